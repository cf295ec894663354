"""Wall-clock and final evaluation of training with 1 process vs K data-parallel processes (torchrun), same total.

    python scripts/benchmark_distributed.py [--nproc 2] [--num_envs 1024] [--seed 42] [--device cpu]
        [--teacher_iterations 500] [--student_iterations 150] [--skip_student] [--student_overrides ...]
        [overrides...]

Runs ``train.py`` four times: the teacher (``point_ctrl``) with 1 process and ``num_envs`` envs, then with ``nproc``
processes of ``num_envs / nproc`` envs each (same total env count, same seed, so the same effective PPO minibatch:
rsl-rl averages the processes' gradients); then the student (``distillation``, teacher = the 1-process teacher's
``best_model.pt``) the same way, with the DAgger buffer and minibatch split across processes too
(``max_buffer_size / nproc`` transitions and ``batch_size / nproc`` sequences per process: the same total dataset and
effective batch). Prints one markdown row per run: training wall-clock (``[info] Training took``, the learning loop
with its periodic evaluations), the whole command's wall-clock, and the final evaluation of ``best_model.pt``
(success, crash, final distance), plus the K-process/1-process time ratio (issue 9's target for the teacher: ≤ 0.6
at equal evaluation, within 0.5 points of success and 0.3 cm).
On a GPU machine pass ``--device cuda`` (one GPU per process).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
TRAIN = os.path.join(REPO, "foundation", "rsl_rl", "train.py")
EVAL = re.compile(r"\[eval\] (\S+): success ([\d.]+) %, crash ([\d.]+) %, final distance ([\d.]+|nan) cm over (\d+)")
TOOK = re.compile(r"\[info\] Training took ([\d.]+) s")


def run(nproc: int, args: list[str]) -> dict:
    """Run train.py (through torchrun when ``nproc > 1``); returns times and rank 0's final evaluation."""
    cmd = [sys.executable, TRAIN, *args] if nproc == 1 else [
        sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", "--standalone", TRAIN,
        "--distributed", *args]
    print("$", " ".join(cmd), flush=True)
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": REPO})
    total = time.perf_counter() - start
    evals = EVAL.findall(proc.stdout)
    if proc.returncode != 0 or not evals:
        sys.exit(f"error: the run failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    checkpoint, success, crash, distance, episodes = evals[-1]
    return {"train_s": max(float(t) for t in TOOK.findall(proc.stdout)), "total_s": total,
            "checkpoint": checkpoint, "success": float(success), "crash": float(crash),
            "distance_cm": float(distance), "episodes": int(episodes)}


def row(name: str, nproc: int, envs: int, r: dict, base: dict | None) -> str:
    ratio = f"{r['train_s'] / base['train_s']:.2f}" if base else "1"
    return (f"| {name} | {nproc} × {envs} | {r['train_s']:.1f} s ({ratio}×) | {r['total_s']:.1f} s | "
            f"{r['success']:.2f} % | {r['crash']:.2f} % | {r['distance_cm']:.2f} cm |")


def main() -> None:
    """Parse the flags, run the four trainings, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nproc", type=int, default=2, help="Processes of the data-parallel runs.")
    parser.add_argument("--num_envs", type=int, default=1024, help="Total environments (split across processes).")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--teacher_iterations", type=int, default=500)
    parser.add_argument("--student_iterations", type=int, default=150)
    parser.add_argument("--max_buffer_size", type=int, default=1_000_000, help="Total DAgger buffer (transitions).")
    parser.add_argument("--batch_size", type=int, default=256,
                        help="Total DAgger minibatch (sequences; the student default).")
    parser.add_argument("--skip_student", action="store_true")
    parser.add_argument("--student_overrides", nargs="*", default=[], help="Extra overrides of the student runs.")
    parser.add_argument("overrides", nargs="*", help="Extra overrides for every run.")
    args = parser.parse_args()
    if args.nproc < 2 or args.num_envs % args.nproc or args.batch_size % args.nproc:
        parser.error("--nproc must be >= 2 and divide --num_envs and --batch_size")
    k = args.nproc
    common = ["--seed", str(args.seed), "--device", args.device, *args.overrides]
    rows = ["| run | processes × envs | training wall-clock (ratio) | whole command | success | crash | "
            "final distance |", "|---|---|---|---|---|---|---|"]
    teacher = ["--task", "point_ctrl", "--max_iterations", str(args.teacher_iterations), *common]
    t1 = run(1, [*teacher, "--num_envs", str(args.num_envs)])
    tk = run(k, [*teacher, "--num_envs", str(args.num_envs // k)])
    rows += [row("teacher (PPO)", 1, args.num_envs, t1, None), row("teacher (PPO)", k, args.num_envs // k, tk, t1)]
    if not args.skip_student:
        student = ["--task", "distillation", "--checkpoint", t1["checkpoint"], "--max_iterations",
                   str(args.student_iterations), *common, *args.student_overrides]
        s1 = run(1, [*student, "--num_envs", str(args.num_envs),
                     f"agent.algorithm.max_buffer_size={args.max_buffer_size}",
                     f"agent.algorithm.batch_size={args.batch_size}"])
        sk = run(k, [*student, "--num_envs", str(args.num_envs // k),
                     f"agent.algorithm.max_buffer_size={args.max_buffer_size // k}",
                     f"agent.algorithm.batch_size={args.batch_size // k}"])
        rows += [row("student (DAgger)", 1, args.num_envs, s1, None),
                 row("student (DAgger)", k, args.num_envs // k, sk, s1)]
    print("\n".join(rows))


if __name__ == "__main__":
    main()
