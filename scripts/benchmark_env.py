"""Throughput of a task's env on the physics backends, and its ratio to stepping the bare MuJoCo model.

    python scripts/benchmark_env.py [--task point_ctrl] [--num_envs 64 256 1024] \
        [--backends mujoco mujoco_batch mujoco_warp] [--nthread 0] [--steps 200]

For each backend and env count it prints env-steps/s (policy steps × envs per second, random actions through the
rsl-rl wrapper: the task's action processing, ``decimation`` physics steps, dones, rewards, resets and
observations) and the same count for the bare model with the same batching (``decimation`` physics steps per env
step and nothing else, applied forces zeroed and controls left as the env set them: ``mj_step`` on the replicated
model for MuJoCo C, one ``step(decimation)`` call on the thread pool for the batch backend, ``mujoco_warp.step`` over
``nworld`` for Warp). ``ratio = env / bare`` is the efficiency of our layer (target ≥ 0.7). Warp kernels are compiled
(or loaded from ``WARP_CACHE_PATH``) before timing. Any registered task can be given with ``--task``; a task whose
controls are constant across a policy step (``constant_action_across_substeps``) runs its physics in one call on
the batch backend.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

import torch

from foundation.envs import RslRlVecEnvWrapper
from foundation.sim import PhysicsBackend, load_spec, make_backend
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


def time_bare(sim: PhysicsBackend, decimation: int, steps: int) -> tuple[float, float]:
    """Env-steps/s of a backend doing only ``decimation`` physics steps per env step (``step(decimation)``: one
    call on the batch backend, a loop of single steps on the others), and the CPU time per env-step in µs (all
    threads of this process: less sensitive than wall time to other jobs on a shared machine)."""
    sim.qfrc_applied[:] = 0.0  # no wrench left over from the env's last action (point control: free flight)
    sim.xfrc_applied[:] = 0.0
    for _ in range(5):
        sim.step(decimation)
    start, start_cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        sim.step(decimation)
    if sim.device.type == "cuda":
        torch.cuda.synchronize()
    wall, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    return steps * sim.num_envs / wall, 1e6 * cpu / (steps * sim.num_envs)


def main() -> None:
    """Parse the flags, then print one table row per backend and env count."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="point_ctrl")
    parser.add_argument("--model", default=None,
                        help="Time only the bare backends on this MJCF file (no task), e.g. tests/assets/pile.xml.")
    parser.add_argument("--decimation", type=int, default=4, help="Physics steps per env step with --model.")
    parser.add_argument("--env_spacing", type=float, default=1.0, help="Env spacing (m) of MuJoCo C with --model.")
    parser.add_argument("--settle", type=int, default=250, help="Physics steps before timing with --model.")
    parser.add_argument("--num_envs", type=int, nargs="+", default=[64, 256, 1024])
    parser.add_argument("--backends", nargs="+", default=["mujoco", "mujoco_batch", "mujoco_warp"],
                        choices=["mujoco", "mujoco_batch", "mujoco_warp"])
    parser.add_argument("--nthread", type=int, default=0, help="Threads of the mujoco_batch backend (0: all cores).")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=200, help="Policy steps timed (Warp on CPU: 20 is plenty).")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads.")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.model:
        print(f"{'backend':<13} {'num_envs':>8} {'bare env steps/s':>17} {'physics steps/s':>16} "
              f"{'CPU µs/env step':>16} {'contacts/env':>13}")
    else:
        print(f"{'backend':<13} {'num_envs':>8} {'env steps/s':>12} {'bare steps/s':>13} {'ratio':>6}")
    for backend in args.backends:
        for n in args.num_envs:
            steps = args.steps if backend != "mujoco_warp" or args.device != "cpu" else max(10, args.steps // 10)
            if args.model:
                sim = make_backend(load_spec(args.model), n, backend, args.device, args.env_spacing,
                                   nthread=args.nthread)
                sim.step(args.settle)
                bare, cpu_us = time_bare(sim, args.decimation, steps)
                ncon = sim.num_contacts().double().mean().item()
                print(f"{backend:<13} {n:>8} {bare:>17,.0f} {bare * args.decimation:>16,.0f} {cpu_us:>16.1f} "
                      f"{ncon:>13.1f}", flush=True)
                continue
            env_cfg, _ = load_task_cfgs(args.task)
            env_cfg.scene.num_envs, env_cfg.sim.backend, env_cfg.sim.device, env_cfg.seed = n, backend, args.device, 0
            env_cfg.sim.nthread = args.nthread
            env = RslRlVecEnvWrapper(make_env(args.task, env_cfg))
            ours = time_env(env, steps)
            env.reset()
            bare, _ = time_bare(env.unwrapped.sim, env.unwrapped.cfg.decimation, steps)
            print(f"{backend:<13} {n:>8} {ours:>12,.0f} {bare:>13,.0f} {ours / bare:>6.2f}", flush=True)
            env.close()


if __name__ == "__main__":
    main()
