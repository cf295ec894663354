"""Plot the learning curves of a training run into a PNG (reward, success, final distance, DAgger diagnostics).

    python scripts/plot_run.py logs/rsl_rl/point_ctrl_distillation/<run> [--out report.png]

See ``foundation.rsl_rl.report`` for the panels.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

from foundation.rsl_rl.report import plot_run  # noqa: E402


def main(argv: list[str] | None = None) -> str:
    """Parse the command line, write the report, print and return its path.

    Raises:
        SystemExit: if the folder holds no TensorBoard event file or none of the plotted tags.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", help="Run folder with TensorBoard event files (logs/rsl_rl/<experiment>/<run>).")
    parser.add_argument("--out", help="Output PNG (default: <run_dir>/report.png).")
    args = parser.parse_args(argv)
    try:
        report = plot_run(args.run_dir, args.out)
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f"error: {err}") from None
    switch = f", phase 2 from iteration {report.phase_switch}" if report.phase_switch is not None else ""
    print(f"[report] {report.path}: {', '.join(report.panels)}{switch}")
    return report.path


if __name__ == "__main__":
    main()
