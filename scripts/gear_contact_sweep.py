"""Sweep the gear scene's contact settings: hold slip, seat rate on and 3 mm off the axis, penetration, speed.

A measurement tool behind docs/gear_physics.md (not a test). Each variant edits the compiled scene's gear and base
geoms (solref, solimp), the timestep (with the decimation that keeps a 30 Hz controller) and MuJoCo's ``refsafe``
flag (which clamps a solref time constant below 2 dt), then runs a 5 s hold and ``--episodes`` scripted episodes per aim.

    python scripts/gear_contact_sweep.py --episodes 20 --dt 0.0041667 0.0027778 --d 0.99 0.999
"""

from __future__ import annotations

import argparse
import itertools
import time

import mujoco
import numpy as np

from foundation.tasks.gear_assembly.harness import GearScene, run_scripted_episode
from foundation.tasks.gear_assembly.scene_cfg import SCENE_XML

#: Geom classes whose solref/solimp a variant sets: the base's, which win every gear-base contact (priority 2). The
#: grip (gear teeth on the fingertip pads) keeps the gear's parameters: at d = 0.999 the held gear bounced out.
CONTACT_CLASSES = ("base_collision",)


def build(dt: float, tau: float, d: float, refsafe: bool) -> mujoco.MjModel:
    spec = mujoco.MjSpec.from_file(str(SCENE_XML))
    for g in spec.geoms:
        if g.classname.name in CONTACT_CLASSES:
            g.solref = [tau, g.solref[1]]
            g.solimp = [d, d, 0.0001, 0.5, 2.0]
    spec.option.timestep = dt
    if not refsafe:
        spec.option.disableflags |= mujoco.mjtDisableBit.mjDSBL_REFSAFE
    return spec.compile()


def hold_slip(scene: GearScene, rng: np.random.Generator, seconds: float = 5.0) -> float:
    scene.reset(rng)
    g0 = scene.gear_in_tcp()
    worst = 0.0
    for _ in range(int(round(seconds / scene.model.opt.timestep))):
        scene.step()
        worst = max(worst, float(np.linalg.norm(scene.gear_in_tcp() - g0)))
    return worst if np.isfinite(worst) else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--dt", type=float, nargs="+", default=[1 / 360])
    parser.add_argument("--tau", type=float, nargs="+", default=[0.0], help="solref time constant, s; 0: 2 dt")
    parser.add_argument("--d", type=float, nargs="+", default=[0.99])
    parser.add_argument("--refsafe", type=int, nargs="+", default=[1])
    args = parser.parse_args()
    print("dt      tau     d       refsafe | hold slip mm | seat on-axis  pen max mm | seat 3mm-off  pen max mm | "
          "wall s/episode")
    for dt, tau, d, refsafe in itertools.product(args.dt, args.tau, args.d, args.refsafe):
        tau = tau or 2 * dt
        scene = GearScene(model=build(dt, tau, d, bool(refsafe)))
        rng = np.random.default_rng(0)
        slip = hold_slip(scene, rng)
        row, t0 = [], time.perf_counter()
        for aim in (0.0, 0.003):
            res = [run_scripted_episode(scene, rng, aim) for _ in range(args.episodes)]
            row.append((np.mean([r.seated for r in res]), max(r.max_penetration_m for r in res),
                        sum(r.nonfinite for r in res)))
        wall = (time.perf_counter() - t0) / (2 * args.episodes)
        (s0, p0, n0), (s3, p3, n3) = row
        print(f"{dt:.5f} {tau:.4f} {d:.4f} {refsafe}       | {slip * 1e3:11.3f}  | {s0:11.0%}  {p0 * 1e3:10.2f}  | "
              f"{s3:11.0%}  {p3 * 1e3:10.2f}  | {wall:.2f}" + (f"  NaN episodes {n0 + n3}" if n0 + n3 else ""))


if __name__ == "__main__":
    main()
