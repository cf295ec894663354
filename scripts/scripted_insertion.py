"""Scripted gear insertion from N random starts, and the raw physics throughput of the gear scene.

Prints the seat rate, the deepest gear-base penetration and the sim/wall time of the scripted controller
(``foundation/tasks/gear_assembly/scripted.py``, exact shaft pose and aimed ``--off_axis_mm`` off it), then, with
``--throughput``, env-steps/s (one env-step = one 30 Hz control step = decimation physics steps) of the scene held
at rest, batched two ways: one MjModel holding N copies (``foundation.sim.mujoco_c.replicate_spec``) stepped by
``mj_step``, and N separate ``MjData`` stepped by ``mujoco.rollout`` with 2 threads.

    python scripts/scripted_insertion.py --episodes 200 [--off_axis_mm 0 3] [--estimate_error_mm 2 5] [--throughput]
"""

from __future__ import annotations

import argparse
import time

import mujoco
import numpy as np
from mujoco import rollout

from foundation.sim.mujoco_c import grid_origins, replicate_spec
from foundation.tasks.gear_assembly.harness import CONTROL_DT_S, GearScene, run_scripted_episode
from foundation.tasks.gear_assembly.scene_cfg import SCENE_XML


def seat_rate(episodes: int, off_axis_m: float, seed: int, estimate_error_m: float = 0.0) -> None:
    scene, rng = GearScene(), np.random.default_rng(seed)
    t0 = time.perf_counter()
    res = [run_scripted_episode(scene, rng, off_axis_m, estimate_error_m=estimate_error_m) for _ in range(episodes)]
    wall = time.perf_counter() - t0
    pen = np.array([r.max_penetration_m for r in res]) * 1e3
    label = f"estimate error U(+-{estimate_error_m * 1e3:.0f} mm)" if estimate_error_m else f"aim {off_axis_m * 1e3:.1f} mm off axis"
    print(f"{label}: seated {np.mean([r.seated for r in res]):.1%} of {episodes}; "
          f"penetration max {pen.max():.3f} mm, p95 {np.percentile(pen, 95):.3f} mm; non-finite {sum(r.nonfinite for r in res)}; "
          f"{sum(r.sim_time_s for r in res):.0f} s simulated in {wall:.1f} s wall")


def throughput(counts: list[int], steps: int) -> None:
    scene = GearScene()
    scene.reset(np.random.default_rng(0))
    m, state_d = scene.model, scene.data
    decimation = int(round(CONTROL_DT_S / m.opt.timestep))
    for n in counts:
        # One MjModel with n copies, all starting from the held-gear state (free joints shifted to their origins).
        spec = mujoco.MjSpec.from_file(str(SCENE_XML))
        big = replicate_spec(spec, n, 1.0).compile()
        bd = mujoco.MjData(big)
        nq = m.nq
        for i, origin in enumerate(grid_origins(n, 1.0)):
            qpos = state_d.qpos.copy()
            for adr in (scene.gear_qadr, scene.base_qadr):  # free joints are in the world frame
                qpos[adr:adr + 3] += origin
            bd.qpos[i * nq:(i + 1) * nq] = qpos
            bd.ctrl[i * m.nu:(i + 1) * m.nu] = state_d.ctrl
        mujoco.mj_forward(big, bd)
        t0 = time.perf_counter()
        mujoco.mj_step(big, bd, nstep=steps * decimation)
        one_model = n * steps / (time.perf_counter() - t0)
        # n MjData, rollout with 2 threads.
        datas = [mujoco.MjData(m) for _ in range(2)]
        size = mujoco.mj_stateSize(m, mujoco.mjtState.mjSTATE_FULLPHYSICS)
        state = np.zeros(size)
        mujoco.mj_getState(m, state_d, state, mujoco.mjtState.mjSTATE_FULLPHYSICS)
        init = np.tile(state, (n, 1))
        ctrl = np.tile(state_d.ctrl, (n, steps * decimation, 1))
        with rollout.Rollout(nthread=2) as r:
            t0 = time.perf_counter()
            r.rollout([m] * n, datas, init, ctrl)
            rolled = n * steps / (time.perf_counter() - t0)
        print(f"{n:4d} envs: one MjModel of N copies {one_model:8.0f} env-steps/s; N MjData + rollout (2 threads) "
              f"{rolled:8.0f} env-steps/s  (decimation {decimation}, dt {m.opt.timestep:.5f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--off_axis_mm", type=float, nargs="+", default=[0.0, 3.0])
    parser.add_argument("--estimate_error_mm", type=float, nargs="*", default=[],
                        help="also run with a shaft estimate error drawn per episode, uniform +-e per horizontal axis")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--throughput", action="store_true", help="also measure physics throughput at 16/64/256 envs")
    parser.add_argument("--throughput_steps", type=int, default=10, help="control steps per throughput measurement")
    args = parser.parse_args()
    for off in args.off_axis_mm:
        seat_rate(args.episodes, off * 1e-3, args.seed)
    for err in args.estimate_error_mm:
        seat_rate(args.episodes, 0.0, args.seed, err * 1e-3)
    if args.throughput:
        throughput([16, 64, 256], args.throughput_steps)


if __name__ == "__main__":
    main()
