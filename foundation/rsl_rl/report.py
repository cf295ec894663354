"""Training report of a run: read its TensorBoard scalars and plot the learning curves into one PNG.

Panels (each drawn only when its tags were logged): mean reward, success rate, final distance, behavior loss,
DAgger buffer fill, and for a distillation run the teacher-driven vs student-driven episodes (success rate and
final distance). The DAgger phase switch (first iteration with ``DAgger/phase`` == 2) is a dashed vertical line on
every panel. Used by ``scripts/plot_run.py``.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass

import numpy as np

#: Panels: (title, y label, [(tag, legend label), ...]); a panel is drawn if any of its tags is present.
PANELS: list[tuple[str, str, list[tuple[str, str]]]] = [
    ("Mean reward", "reward", [("Train/mean_reward", "train")]),
    ("Success rate", "success rate", [("Episode_Metric/success", "training episodes"),
                                      ("Eval/success_rate", "evaluation")]),
    ("Final distance", "m", [("Episode_Metric/final_distance", "training episodes"),
                             ("Eval/final_distance", "evaluation")]),
    ("Behavior loss", "loss", [("Loss/behavior", "behavior")]),
    ("Buffer fill", "fraction of capacity", [("DAgger/buffer_fill", "buffer fill")]),
    ("Teacher- vs student-driven success", "success rate",
     [("DAgger/teacher_driven_success_rate", "teacher-driven"),
      ("DAgger/student_driven_success_rate", "student-driven")]),
    ("Teacher- vs student-driven final distance", "m",
     [("DAgger/teacher_driven_final_distance", "teacher-driven"),
      ("DAgger/student_driven_final_distance", "student-driven")]),
]
PHASE_TAG = "DAgger/phase"
#: Panels kept side by side on one row.
PAIRED = ("Teacher- vs student-driven success", "Teacher- vs student-driven final distance")


@dataclass
class Report:
    """What :func:`plot_run` wrote.

    Attributes:
        path: The PNG file.
        panels: Titles of the panels drawn, in order.
        phase_switch: Iteration where DAgger phase 2 starts, or None.
    """

    path: str
    panels: list[str]
    phase_switch: int | None


def read_scalars(run_dir: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every scalar of the run's TensorBoard event files: ``{tag: (steps (K,) int, values (K,) float)}``.

    Several event files in one folder (e.g. a run folder reused by hand) are merged in step order.

    Raises:
        FileNotFoundError: if ``run_dir`` is not a folder or holds no ``events.out.tfevents.*`` file.
    """
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    if not os.path.isdir(run_dir):
        raise FileNotFoundError(f"Run folder '{run_dir}' does not exist.")
    files = sorted(glob.glob(os.path.join(run_dir, "events.out.tfevents.*")))
    if not files:
        raise FileNotFoundError(f"No TensorBoard event file (events.out.tfevents.*) in '{run_dir}': is it a run "
                                "folder of logs/rsl_rl/<experiment>/, logged with logger=tensorboard?")
    merged: dict[str, dict[int, float]] = {}
    for path in files:
        acc = EventAccumulator(path, size_guidance={"scalars": 0})
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            merged.setdefault(tag, {}).update({e.step: e.value for e in acc.Scalars(tag)})
    return {tag: (np.array(sorted(v), dtype=int), np.array([v[s] for s in sorted(v)], dtype=float))
            for tag, v in merged.items()}


def phase_switch(scalars: dict[str, tuple[np.ndarray, np.ndarray]]) -> int | None:
    """First iteration whose ``DAgger/phase`` is 2 (None if never, or not a DAgger run)."""
    if PHASE_TAG not in scalars:
        return None
    steps, values = scalars[PHASE_TAG]
    idx = np.flatnonzero(values >= 1.5)
    return int(steps[idx[0]]) if len(idx) else None


def plot_run(run_dir: str, out: str | None = None) -> Report:
    """Plot the learning curves of ``run_dir`` into ``out`` (default ``<run_dir>/report.png``).

    Args:
        run_dir: A run folder holding TensorBoard event files.
        out: PNG path (its folder is created).

    Returns:
        The :class:`Report` (path, panels drawn, phase switch).

    Raises:
        FileNotFoundError: if the folder holds no event file (see :func:`read_scalars`).
        ValueError: if none of the plotted tags was logged.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    scalars = read_scalars(run_dir)
    panels = [(title, ylabel, [(t, lbl) for t, lbl in curves if t in scalars]) for title, ylabel, curves in PANELS]
    panels = [p for p in panels if p[2]]
    if not panels:
        raise ValueError(f"None of the plotted tags ({', '.join(t for _, _, c in PANELS for t, _ in c)}) is in "
                         f"the event files of '{run_dir}'.")
    switch = phase_switch(scalars)
    cols = 2 if len(panels) > 1 else 1
    cells: list = list(panels)
    first_pair = next((i for i, p in enumerate(cells) if p[0] in PAIRED), None)
    if cols == 2 and first_pair is not None and first_pair % 2:
        cells.insert(first_pair, None)  # the teacher/student panels side by side on their own row
    rows = (len(cells) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(6.5 * cols, 3.4 * rows), squeeze=False)
    for ax, cell in zip(axes.flat, cells):
        if cell is None:
            ax.set_visible(False)
            continue
        title, ylabel, curves = cell
        for tag, label in curves:
            steps, values = scalars[tag]
            ax.plot(steps, values, marker="o" if len(steps) < 20 else None, markersize=3, label=label)
        if switch is not None:
            ax.axvline(switch, color="gray", linestyle="--", linewidth=1, label="phase 2 starts")
        if ylabel == "success rate":
            ax.set_ylim(-0.03, 1.03)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(title)
        ax.set_xlabel("iteration")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(cells):]:
        ax.set_visible(False)
    fig.suptitle(os.path.basename(os.path.normpath(run_dir)))
    fig.tight_layout()
    out = os.path.abspath(out or os.path.join(run_dir, "report.png"))
    os.makedirs(os.path.dirname(out), exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return Report(out, [p[0] for p in panels], switch)
