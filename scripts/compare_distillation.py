"""Ablation of the distillation algorithm on point control: same teacher, budget, seeds and evaluation.

    python scripts/compare_distillation.py [--checkpoint <teacher.pt>] [--seeds 1 2] [--max_iterations 150]

Variants (every other setting is the default ``distillation`` config):

(a) ``rsl-rl Distillation``: rsl-rl's own algorithm: the student drives from the first step, it trains on the
    latest rollout only (time order, ``gradient_length``), no aggregation;
(b) ``two-phase, no aggregation``: DAgger with ``aggregate=False`` (buffer cleared after every update);
(c) ``two-phase + aggregation``: the default DAgger;
(d) ``linear β decay + aggregation``: β falls linearly from 1 to 0 over ``beta_decay_iterations`` after phase 1.

Each run's ``best_model.pt`` (picked by the student's own periodic evaluation) is evaluated on the final evaluation
(``agent.eval.final_num_episodes`` episodes, a seed not used for selection); the table prints mean ± spread over
seeds of success rate and final distance, and the wall time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

from foundation.rsl_rl import train

VARIANTS = {
    "(a) rsl-rl Distillation": ["agent.algorithm.class_name=Distillation"],
    "(b) two-phase, no aggregation": ["agent.algorithm.aggregate=false"],
    "(c) two-phase + aggregation": [],
    "(d) linear β decay + aggregation": ["agent.algorithm.beta_schedule=linear"],
}


def main() -> None:
    """Parse the flags, train every variant with every seed, then print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", help="Teacher checkpoint (default: newest point_ctrl run).")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--max_iterations", type=int, default=150)
    parser.add_argument("--variants", nargs="+", default=[name[1] for name in VARIANTS], choices=["a", "b", "c", "d"],
                        help="Which variants to run (default: all).")
    parser.add_argument("overrides", nargs="*", help="Extra overrides applied to every variant.")
    args = parser.parse_args()
    rows = []
    for name, overrides in VARIANTS.items():
        if name[1] not in args.variants:
            continue
        results, seconds = [], []
        for seed in args.seeds:
            argv = ["--task", "distillation", "--seed", str(seed), "--max_iterations", str(args.max_iterations),
                    "--run_name", f"compare_{name[1]}_seed{seed}", *overrides, *args.overrides]
            if args.checkpoint:
                argv += ["--checkpoint", args.checkpoint]
            start = time.time()
            results.append(train.main(argv)["eval"])
            seconds.append(time.time() - start)
        rows.append((name, results, statistics.mean(seconds)))

    def fmt(values: list[float], scale: float, unit: str) -> str:
        spread = f" ± {scale * statistics.stdev(values):.2f}" if len(values) > 1 else ""
        return f"{scale * statistics.mean(values):.2f}{spread} {unit}"

    print(f"\n| variant | success rate | final distance | crash rate | wall time per run |")
    print("|---|---|---|---|---|")
    for name, results, secs in rows:
        print(f"| {name} | {fmt([r.success_rate for r in results], 100, '%')} | "
              f"{fmt([r.final_distance_m for r in results], 100, 'cm')} | "
              f"{fmt([r.crash_rate for r in results], 100, '%')} | {secs:.0f} s |")
    print(f"\n{len(args.seeds)} seed(s) {args.seeds}, {args.max_iterations} iterations each, "
          f"{results[0].num_episodes} evaluation episodes per run.")


if __name__ == "__main__":
    main()
