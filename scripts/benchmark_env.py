"""Throughput of the point-control env on both physics backends, and its ratio to stepping the bare MuJoCo model.

    python scripts/benchmark_env.py [--num_envs 64 256 1024] [--backends mujoco mujoco_warp] [--steps 200]

For each backend and env count it prints env-steps/s (policy steps × envs per second, random actions through the
rsl-rl wrapper: action processing, motor model, wrench, ``decimation`` physics steps, dones, rewards, resets and
observations) and the same count for the bare model with the same batching (``decimation`` physics steps per env
step and nothing else: ``mj_step`` on the replicated model for MuJoCo C, ``mujoco_warp.step`` over ``nworld`` for
Warp). ``ratio = env / bare`` is the efficiency of our layer (target ≥ 0.7). Warp kernels are compiled (or loaded
from ``WARP_CACHE_PATH``) before timing.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

import torch

from foundation.envs import RslRlVecEnvWrapper
from foundation.tasks import load_task_cfgs, make_env


def time_env(env: RslRlVecEnvWrapper, steps: int) -> float:
    """Env-steps/s of ``steps`` policy steps with uniform random actions (after 5 warm-up steps)."""
    actions = 2 * torch.rand(steps + 5, env.num_envs, env.num_actions, device=env.device) - 1
    for i in range(5):
        env.step(actions[i])
    start = time.perf_counter()
    for i in range(steps):
        env.step(actions[5 + i])
    if env.device.type == "cuda":
        torch.cuda.synchronize()
    return steps * env.num_envs / (time.perf_counter() - start)


def time_bare(env: RslRlVecEnvWrapper, steps: int) -> float:
    """Env-steps/s of the same backend doing only ``decimation`` physics steps per env step."""
    sim, decimation = env.unwrapped.sim, env.unwrapped.cfg.decimation
    env.reset()
    sim.qfrc_applied[:] = 0.0  # free flight under gravity: no wrench left over from the env's last action
    for _ in range(5 * decimation):
        sim.step()
    start = time.perf_counter()
    for _ in range(steps * decimation):
        sim.step()
    if env.device.type == "cuda":
        torch.cuda.synchronize()
    return steps * env.num_envs / (time.perf_counter() - start)


def main() -> None:
    """Parse the flags, then print one table row per backend and env count."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="point_ctrl")
    parser.add_argument("--num_envs", type=int, nargs="+", default=[64, 256, 1024])
    parser.add_argument("--backends", nargs="+", default=["mujoco", "mujoco_warp"], choices=["mujoco", "mujoco_warp"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=200, help="Policy steps timed (Warp on CPU: 20 is plenty).")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads.")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{'backend':<12} {'num_envs':>8} {'env steps/s':>12} {'bare steps/s':>13} {'ratio':>6}")
    for backend in args.backends:
        for n in args.num_envs:
            env_cfg, _ = load_task_cfgs(args.task)
            env_cfg.scene.num_envs, env_cfg.sim.backend, env_cfg.sim.device, env_cfg.seed = n, backend, args.device, 0
            env = RslRlVecEnvWrapper(make_env(args.task, env_cfg))
            steps = args.steps if backend == "mujoco" or args.device != "cpu" else max(10, args.steps // 10)
            ours, bare = time_env(env, steps), time_bare(env, steps)
            print(f"{backend:<12} {n:>8} {ours:>12,.0f} {bare:>13,.0f} {ours / bare:>6.2f}", flush=True)
            env.close()


if __name__ == "__main__":
    main()
