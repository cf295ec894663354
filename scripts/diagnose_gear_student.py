"""Where and why a gear-assembly student fails: success by estimate-error size, the gear's state where it is stuck,
and whether the teacher could rescue the student's states.

    python scripts/diagnose_gear_student.py --checkpoint logs/rsl_rl/gear_assembly_distillation/<run>/best_model.pt \
        [--num_envs 512] [--estimate_error_mm 5] [--probe_step 150] [--handover_steps 90 150] [--seed 44]

One deterministic episode per env (as ``train.py --eval_only``, whose seed is ``agent.seed + 2`` = 44), three kinds
of rollout on the same starts:

* the student alone: success per band of the episode's horizontal estimate error |e_xy| (mm);
* the same, stopped at ``--probe_step``: the envs whose gear is "stuck" (> 4 mm from the axis, > 5 mm above its seat)
  against the others — the gear's tilt from vertical (deg), its offset from the TCP, how hard the student pushes down
  (median z action over the 20 steps before) and where its xy action points (cosine with the direction to the shaft);
* the student for ``k`` steps, then the checkpoint's teacher (exact shaft pose) for the rest: if the teacher cannot
  rescue the student's states either, the student's failures are traps of the physics, not errors of imitation.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

import torch

from foundation.envs import RslRlVecEnvWrapper
from foundation.rsl_rl import cli
from foundation.rsl_rl.runner import RUNNERS
from foundation.rsl_rl.runner_cfg import to_rsl_rl_dict
from foundation.tasks import load_task_cfgs, make_env
from foundation.utils.config import apply_overrides

BANDS_MM = ((0.0, 1.35), (1.35, 2.5), (2.5, 4.0), (4.0, 5.5), (5.5, 8.0))


@torch.inference_mode()
def rollout(env: RslRlVecEnvWrapper, student, teacher, seed: int, handover: int | None = None,
            stop: int | None = None) -> dict:
    """One episode per env; the teacher acts from step ``handover`` on (never when None).

    Returns:
        ``{"success": (N,) bool, "error_xy_mm": (N,) horizontal estimate error, mm}``; with ``stop``, the state at that
        step instead: ``stuck`` (N,) bool, ``tilt_deg`` (N,) gear axis from vertical, deg, ``gear_tcp_mm`` (N,) gear
        centre to TCP, mm, ``push`` and ``cosine`` (N,) medians over the last 20 steps of the z action and of the
        cosine between the xy action and the world-frame direction from the TCP to the shaft.
    """
    unwrapped, n = env.unwrapped, env.num_envs
    obs, _ = env.reset(seed)
    student.reset()
    teacher.reset()
    error_xy = unwrapped.shaft_estimate_error()[:, :2].norm(dim=1).clone()
    done = torch.zeros(n, dtype=torch.bool)
    success = torch.zeros(n, dtype=torch.bool)
    push, cosine = [], []
    for t in range(int(env.max_episode_length) + 1):
        actions = student(obs)
        if stop is not None and t == stop:
            state = unwrapped._compute_state()
            axis = unwrapped.sim.site_xmat_w[:, unwrapped._gear_site].float().view(-1, 3, 3)[:, :, 2]
            gear_in_tcp = unwrapped.sim.site_pos_w[:, unwrapped._gear_site].float() - unwrapped._tcp_pose()[0]
            return {"stuck": (state["xy_error"] > 0.004) & (state["height_error"] > 0.005),
                    "tilt_deg": torch.rad2deg(torch.acos(axis[:, 2].abs().clamp(max=1.0))),
                    "gear_tcp_mm": 1000 * gear_in_tcp.norm(dim=1),
                    "push": torch.stack(push[-20:]).median(dim=0).values,
                    "cosine": torch.stack(cosine[-20:]).median(dim=0).values}
        to_shaft = (unwrapped.shaft_tip_pos() - unwrapped.tcp_pos())[:, :2]
        xy = actions[:, :2].clamp(-1, 1)
        cosine.append((to_shaft * xy).sum(dim=1) / (to_shaft.norm(dim=1) * xy.norm(dim=1)).clamp_min(1e-9))
        push.append(actions[:, 2].clamp(-1, 1))
        if handover is not None and t >= handover:
            actions = teacher(obs)  # an MLP on `teacher`: no state to keep warm before the handover
        obs, _, dones, extras = env.step(actions)
        outcomes = extras.get("episode_outcomes")
        if outcomes is not None:
            ids = outcomes["env_ids"]
            keep = ~done[ids]
            success[ids[keep]] = outcomes["success"][keep]
            done[ids[keep]] = True
        student.reset(dones)
        teacher.reset(dones)
        if done.all():
            break
    return {"success": success, "error_xy_mm": 1000 * error_xy}


def main() -> None:
    """Parse the flags, run the rollouts, print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True,
                        help="A gear_assembly_distillation checkpoint (student + teacher).")
    parser.add_argument("--num_envs", type=int, default=512)
    parser.add_argument("--estimate_error_mm", type=float, default=5.0)
    parser.add_argument("--probe_step", type=int, default=150)
    parser.add_argument("--handover_steps", type=int, nargs="*", default=[90, 150])
    parser.add_argument("--seed", type=int, default=44)
    args = parser.parse_args()
    if not os.path.isfile(args.checkpoint):
        parser.error(f"--checkpoint {args.checkpoint}: no such file")
    env_cfg, agent_cfg = load_task_cfgs("gear_assembly_distillation")
    cfgs = apply_overrides({"env": env_cfg, "agent": agent_cfg}, [
        f"env.scene.num_envs={args.num_envs}", f"env.noise.shaft_estimate_error_m={args.estimate_error_mm / 1000}"])
    env_cfg, agent_cfg = cfgs["env"], cfgs["agent"]
    cli.without_dataset(agent_cfg, args.num_envs)
    cli.setup_torch(agent_cfg)
    env = RslRlVecEnvWrapper(make_env("gear_assembly_distillation", env_cfg))
    runner = RUNNERS[agent_cfg.runner_class_name](env, to_rsl_rl_dict(agent_cfg), log_dir=None, device="cpu")
    runner.load(args.checkpoint, map_location="cpu")
    runner.alg.eval_mode()
    student, teacher = runner.alg.get_policy(), runner.alg.teacher

    alone = rollout(env, student, teacher, args.seed)
    s, e = alone["success"], alone["error_xy_mm"]
    print(f"student alone, estimate error U(±{args.estimate_error_mm:g} mm): {100 * s.float().mean():.2f} % of "
          f"{args.num_envs}")
    for lo, hi in BANDS_MM:
        band = (e >= lo) & (e < hi)
        if band.any():
            print(f"  |e_xy| {lo:.2f}-{hi:.2f} mm: {int(band.sum()):4d} episodes, {100 * s[band].float().mean():.1f} %")
    probe = rollout(env, student, teacher, args.seed, stop=args.probe_step)
    stuck = probe["stuck"]
    print(f"at step {args.probe_step}: {100 * stuck.float().mean():.1f} % stuck (> 4 mm off the axis, > 5 mm above "
          "the seat); medians, stuck | others:")
    for key, label in (("tilt_deg", "gear tilt from vertical, deg"), ("gear_tcp_mm", "gear centre from the TCP, mm"),
                       ("push", "z action over the last 20 steps"),
                       ("cosine", "cos(xy action, direction to the shaft)")):
        v = probe[key]
        others = v[~stuck].median().item() if (~stuck).any() else float("nan")
        print(f"  {label}: {v[stuck].median().item() if stuck.any() else float('nan'):.2f} | {others:.2f}")
    for k in args.handover_steps:
        rescued = rollout(env, student, teacher, args.seed, handover=k)["success"]
        print(f"student for {k} steps, then the teacher: {100 * rescued.float().mean():.2f} % "
              f"(student alone {100 * s.float().mean():.2f} %; rescued {int((rescued & ~s).sum())}, "
              f"lost {int((s & ~rescued).sum())})")


if __name__ == "__main__":
    main()
