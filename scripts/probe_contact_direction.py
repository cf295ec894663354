"""How well does the student's wrist sensing show where the shaft is, with the gear resting on the shaft's top face?

    python scripts/probe_contact_direction.py [--num_envs 32] [--aim_off_axis_mm 5] [--steps 150]

The scripted insertion (``scripted_policy.ScriptedPolicy``, exact shaft pose) is aimed ``--aim_off_axis_mm`` off the
axis in a random direction per episode, so after ``--steps`` policy steps the gear rests on the shaft's top face,
pushed down. Printed, over the last 20 steps of every env:

* the correlation between the direction to the shaft (from the TCP, world x and y) and the tared wrist torque
  (noise-free, world frame) across the envs — what a policy reading the raw wrench has to go on (τ_y ∝ +x offset,
  τ_x ∝ −y offset for a push down);
* the cosine between the direction to the shaft and the ``policy`` group's ``contact_pos_rel_ee`` (the contact point
  located from the noisy, tared wrench; ``GearAssemblyEnv._locate_contact``), for one step and averaged over 20.

The numbers back the README's "contact localisation" paragraph.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from foundation.tasks import load_task_cfgs, make_env
from foundation.tasks.gear_assembly.observations import OBS_DIM_CFG, POLICY_OBS_ORDER
from foundation.tasks.gear_assembly.scripted_policy import ScriptedPolicy
from foundation.utils.config import apply_overrides


def main() -> None:
    """Parse the flags, run the probe, print the numbers."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num_envs", type=int, default=32)
    parser.add_argument("--aim_off_axis_mm", type=float, default=5.0)
    parser.add_argument("--steps", type=int, default=150, help="Policy steps before the 20 that are measured.")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.num_envs < 3 or args.steps < 20:
        parser.error("--num_envs must be >= 3 (a correlation) and --steps >= 20 (the measured window)")
    torch.set_num_threads(1)
    cfg, _ = load_task_cfgs("gear_assembly")
    cfg = apply_overrides({"env": cfg}, [f"env.scene.num_envs={args.num_envs}", f"env.seed={args.seed}",
                                         "env.noise.shaft_estimate_error_m=0.0"])["env"]
    env = make_env("gear_assembly", cfg)
    col = sum(OBS_DIM_CFG[t] for t in POLICY_OBS_ORDER[:POLICY_OBS_ORDER.index("contact_pos_rel_ee")])
    policy = ScriptedPolicy(env, aim_off_axis_m=args.aim_off_axis_mm / 1000.0)
    obs, _ = env.reset(seed=args.seed)
    policy.reset()
    torques, located = [], []
    for step in range(args.steps):
        obs, *_ = env.step(policy(obs))
        if step >= args.steps - 20:
            rot = env.sim.site_xmat_w[:, env._ft_site].float().view(-1, 3, 3)
            tared = env.sim.sensordata[:, env._torque].float() - env._start_wrench[:, 3:]
            torques.append((rot @ tared.unsqueeze(-1)).squeeze(-1))
            located.append(obs["policy"][:, col:col + 3].clone())
    to_shaft = (env.shaft_tip_pos() - env.tcp_pos())[:, :2]
    torque = torch.stack(torques).mean(dim=0)
    located = torch.stack(located)

    def cosine(v: torch.Tensor) -> np.ndarray:
        return ((to_shaft * v).sum(dim=1) / (to_shaft.norm(dim=1) * v.norm(dim=1)).clamp_min(1e-12)).numpy()

    in_contact = located[-1, :, 2].mean().item()
    corr_x = np.corrcoef(to_shaft[:, 0].numpy(), torque[:, 1].numpy())[0, 1]
    corr_y = np.corrcoef(to_shaft[:, 1].numpy(), -torque[:, 0].numpy())[0, 1]
    one, mean20 = cosine(located[-1, :, :2]), cosine(located[:, :, :2].mean(dim=0))
    print(f"{args.num_envs} starts aimed {args.aim_off_axis_mm:g} mm off the axis, after {args.steps} steps: "
          f"{100 * in_contact:.0f} % in contact, distance from the axis {1000 * to_shaft.norm(dim=1).mean():.1f} mm")
    print(f"raw wrench: correlation of the tared world torque with the direction to the shaft: "
          f"τ_y vs x {corr_x:+.2f}, −τ_x vs y {corr_y:+.2f}")
    print(f"contact_pos_rel_ee: cosine with the direction to the shaft, median (10th percentile): one step "
          f"{np.median(one):.2f} ({np.percentile(one, 10):.2f}), 20-step mean {np.median(mean20):.2f} "
          f"({np.percentile(mean20, 10):.2f})")


if __name__ == "__main__":
    main()
