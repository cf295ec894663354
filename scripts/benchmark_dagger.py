"""Throughput of the aggregated buffer, and the time per distillation iteration of DAgger vs rsl-rl's Distillation.

    python scripts/benchmark_dagger.py [--num_envs 1024] [--iterations 10] [--device cpu]

Prints (1) buffer insert throughput (transitions/s, one env step of ``num_envs`` transitions per insert) and sample
throughput for single transitions and for sequences; (2) the mean wall time of a learning iteration (rollout +
update) of ``foundation.rsl_rl.dagger:DAgger`` and of plain rsl-rl ``Distillation`` on the same point-control env,
with the same GRU student and rollout length, and their ratio (target ≤ 1.3). The teacher is a randomly initialised
copy of the PPO actor: the timing does not depend on its quality.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

import torch

from foundation.envs import RslRlVecEnvWrapper
from foundation.rsl_rl.aggregated_buffer import AggregatedBuffer
from foundation.rsl_rl.runner import RUNNERS
from foundation.rsl_rl.runner_cfg import to_rsl_rl_dict
from foundation.tasks import load_task_cfgs, make_env


def rate(fn, count: int, repeats: int) -> float:
    """``count * repeats / seconds`` of calling ``fn`` ``repeats`` times (after one warm-up call)."""
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return count * repeats / (time.perf_counter() - start)


def buffer_throughput(num_envs: int, device: str) -> None:
    """Print insert and sample throughput of a 1M-transition buffer with the point-control sizes."""
    buffer = AggregatedBuffer(1_000_000, num_envs, {"policy": 22, "teacher": 28}, 4, device)
    obs = {"policy": torch.randn(num_envs, 22, device=device), "teacher": torch.randn(num_envs, 28, device=device)}
    act, flags = torch.randn(num_envs, 4, device=device), torch.zeros(num_envs, dtype=torch.bool, device=device)
    insert = rate(lambda: buffer.add(obs, act, act, flags, flags), num_envs, 2000)
    single = rate(lambda: buffer.sample_transitions(4096), 4096, 200)
    seqs = rate(lambda: buffer.sample_sequences(128, 32, 8), 128 * 32, 200)
    print(f"buffer ({buffer.memory_bytes / 2**20:.0f} MiB on {device}): insert {insert:,.0f} transitions/s, "
          f"sample {single:,.0f} transitions/s (batches of 4096), {seqs:,.0f} transitions/s "
          "(128 sequences x 32 steps)")


def iteration_time(algorithm: str, num_envs: int, iterations: int, device: str) -> float:
    """Mean seconds per learning iteration (rollout + update) of ``algorithm`` ("DAgger" or "Distillation")."""
    env_cfg, agent_cfg = load_task_cfgs("distillation")
    env_cfg.scene.num_envs, env_cfg.sim.device, env_cfg.seed = num_envs, device, 0
    agent_cfg.device = device
    cfg = to_rsl_rl_dict(agent_cfg)
    if algorithm == "Distillation":  # rsl-rl's own: trains on the latest rollout in time order, then clears it
        cfg["algorithm"] = {"class_name": "Distillation", "num_learning_epochs": 1,
                            "gradient_length": agent_cfg.algorithm.gradient_length,
                            "learning_rate": agent_cfg.algorithm.learning_rate,
                            "max_grad_norm": agent_cfg.algorithm.max_grad_norm, "loss_type": "mse"}
    else:
        cfg["algorithm"]["phase1_iterations"] = 0  # time phase 2 (student drives), the steady state
    env = RslRlVecEnvWrapper(make_env("distillation", env_cfg))
    runner = RUNNERS["DistillationRunner"](env, cfg, log_dir=None, device=device)
    runner.alg.teacher_loaded = True
    runner.learn(2)  # warm-up
    start = time.perf_counter()
    runner.learn(iterations)
    return (time.perf_counter() - start) / iterations


def main() -> None:
    """Parse the flags, then print the buffer throughput and the iteration-time comparison."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num_envs", type=int, default=1024)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads.")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    buffer_throughput(args.num_envs, args.device)
    plain = iteration_time("Distillation", args.num_envs, args.iterations, args.device)
    dagger = iteration_time("DAgger", args.num_envs, args.iterations, args.device)
    print(f"iteration time at {args.num_envs} envs: rsl-rl Distillation {plain:.3f} s, DAgger {dagger:.3f} s, "
          f"ratio {dagger / plain:.2f}")


if __name__ == "__main__":
    main()
