"""Robustness of a point-control teacher and student: deterministic evaluations under a named set of conditions.

    python scripts/evaluate_robustness.py [--teacher <ppo.pt>] [--student <distillation.pt>] [--num_episodes 2048]
        [--conditions nominal latency_20ms ...] [--roles teacher student] [--seed 7] [--out logs/robustness.json]

Without ``--teacher`` / ``--student`` the newest run of each task's experiment is used (``best_model.pt``), as
``train.py --eval_only`` does. Each condition is a list of Hydra-style overrides of the env config (printed in the
JSON, usable with ``train.py``/``play.py`` as they are) on top of ``NOMINAL``, which disables every randomised
factor (the nominal Crazyflie: 27 g, thrust-to-weight 2.25, τ 0.03 s, no latency, equal motors, no payload, no
gusts). Conditions at the edge of the training ranges carry the issue-8 targets (≥ 95 % success, ≤ 1 % crashes);
those marked "beyond" lie outside them and are reported only. Every condition runs ``--num_episodes`` deterministic
episodes (one per env, the same seed for both policies), and the script prints one table (success, crash, mean
final distance, chatter: mean |Δa| per step and the fraction of commands at a limit) and writes it as JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import asdict

if __package__ in (None, ""):  # run as a script: make the repository importable without installation
    sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

import torch

from foundation.envs import RslRlVecEnvWrapper
from foundation.rsl_rl import cli
from foundation.rsl_rl.evaluation import EvalResult, evaluate
from foundation.rsl_rl.runner import RUNNERS, CheckpointError
from foundation.rsl_rl.runner_cfg import to_rsl_rl_dict
from foundation.tasks import load_task_cfgs, make_env
from foundation.utils.config import ConfigError, apply_overrides

#: Every randomised factor of the point-control env at its nominal value (see ``PointCtrlEnvCfg``).
NOMINAL = ("env.robot.mass_range_kg=[0.027,0.027]", "env.robot.thrust_to_weight_range=[2.25,2.25]",
           "env.robot.payload_range_kg=[0.0,0.0]", "env.robot.motor_strength_range=[1.0,1.0]",
           "env.robot.motor_tau_scale_range=[1.0,1.0]", "env.robot.latency_steps_range=[0,0]", "env.gusts.rate_hz=0.0")
#: Gusts for 0.3 s at random times (0.5 per second while none acts), the last ending >= 1 s before the episode's end.
GUSTS = ("env.gusts.rate_hz=0.5", "env.gusts.duration_range_s=[0.3,0.3]", "env.gusts.quiet_end_s=1.0")

#: name -> (kind, overrides on top of NOMINAL); kind: "nominal", "edge" (targets apply), "training" (the training
#: distribution, every factor randomised), "beyond" (outside the training ranges, reported only).
#: Latency in physics steps of the default sim dt, 10 ms.
CONDITIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "nominal": ("nominal", ()),
    "training_distribution": ("training", ("__default__",)),
    "latency_20ms": ("edge", ("env.robot.latency_steps_range=[2,2]",)),
    "latency_30ms": ("edge", ("env.robot.latency_steps_range=[3,3]",)),
    "rotor_tau_0.06s": ("edge", ("env.robot.motor_tau_scale_range=[2.0,2.0]",)),
    "payload_+10g": ("edge", ("env.robot.payload_range_kg=[0.01,0.01]",)),
    "motor_spread_5pct": ("edge", ("env.robot.motor_strength_range=[0.95,1.05]",)),
    "gusts_0.3mg_0.3s": ("edge", GUSTS + ("env.gusts.force_range_mg=[0.3,0.3]",)),
    "latency_40ms": ("beyond", ("env.robot.latency_steps_range=[4,4]",)),
    "rotor_tau_0.08s": ("beyond", ("env.robot.motor_tau_scale_range=[2.6666667,2.6666667]",)),
    "payload_+15g": ("beyond", ("env.robot.payload_range_kg=[0.015,0.015]",)),
    "gusts_0.5mg_0.3s": ("beyond", GUSTS + ("env.gusts.force_range_mg=[0.5,0.5]",)),
    "tilt_90deg_start": ("beyond", ("env.init.max_tilt_rad=1.5707963",)),
}
#: The policies evaluated: role -> task id.
TASKS = {"teacher": "point_ctrl", "student": "distillation"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse and check the command line (see the module docstring).

    Raises:
        SystemExit: on an unknown condition or a non-positive episode count.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher", help="PPO checkpoint (default: newest point_ctrl run, best_model.pt).")
    parser.add_argument("--student", help="Distillation checkpoint (default: newest point_ctrl_distillation run).")
    parser.add_argument("--num_episodes", type=int, default=2048, help="Episodes per condition (default 2048).")
    parser.add_argument("--conditions", nargs="+", default=list(CONDITIONS), metavar="NAME",
                        help=f"Conditions to run (default all): {', '.join(CONDITIONS)}.")
    parser.add_argument("--roles", nargs="+", choices=list(TASKS), default=list(TASKS),
                        help="Policies to evaluate (default both: teacher student).")
    parser.add_argument("--seed", type=int, default=7, help="Evaluation seed, the same for every condition.")
    parser.add_argument("--device", default="cpu", help="Device of the policies and the simulation.")
    parser.add_argument("--out", default=os.path.join("logs", "robustness.json"), help="JSON file written.")
    parser.add_argument("--allow_unsafe_checkpoint", action="store_true",
                        help="Allow checkpoints that need full unpickling (only for files you trust).")
    args = parser.parse_args(argv)
    unknown = [c for c in args.conditions if c not in CONDITIONS]
    if unknown:
        parser.error(f"unknown condition(s) {', '.join(unknown)}; valid: {', '.join(CONDITIONS)}")
    if args.num_episodes < 1:
        parser.error(f"--num_episodes must be >= 1, got {args.num_episodes}")
    return args


def condition_cfg(name: str, num_envs: int, seed: int, device: str):
    """The point-control env config of condition ``name`` with ``num_envs`` envs.

    Raises:
        ConfigError: if an override of the condition does not fit the config.
    """
    env_cfg, _ = load_task_cfgs("point_ctrl")
    overrides = CONDITIONS[name][1]
    if overrides != ("__default__",):
        overrides = NOMINAL + overrides
        env_cfg = apply_overrides({"env": env_cfg}, overrides)["env"]
    env_cfg.scene.num_envs, env_cfg.seed, env_cfg.sim.device = num_envs, seed, device
    return env_cfg


def load_policy(role: str, checkpoint: str | None, env: RslRlVecEnvWrapper, device: str, allow_unsafe: bool):
    """The deterministic policy of ``role`` (``teacher``/``student``) from ``checkpoint`` (default: newest run), loaded
    as ``train.py --eval_only`` loads it. Returns ``(policy, checkpoint path)``.

    Raises:
        SystemExit: if no checkpoint is found or it does not hold this role's policy.
    """
    task = TASKS[role]
    _, agent_cfg = load_task_cfgs(task)
    agent_cfg.device = device
    checkpoint = cli.find_checkpoint(agent_cfg.experiment_name, None, checkpoint,
                                     expect={**cli.expected_checkpoint(agent_cfg.runner_class_name, task),
                                             "role": f"{role} of task '{task}'"},
                                     allow_unsafe=allow_unsafe)
    agent_cfg = cli.models_from_checkpoint(agent_cfg, checkpoint, allow_unsafe=allow_unsafe)
    cli.without_dataset(agent_cfg, env.num_envs)
    runner = RUNNERS[agent_cfg.runner_class_name](env, to_rsl_rl_dict(agent_cfg), log_dir=None, device=device,
                                                  allow_unsafe_checkpoint=allow_unsafe)
    try:
        runner.load(checkpoint, map_location=device)
    except (CheckpointError, RuntimeError, ValueError) as err:
        raise SystemExit(f"error: cannot load the {role} '{checkpoint}': {err}") from None
    runner.alg.eval_mode()
    return runner.alg.get_policy(), checkpoint


def format_table(results: dict[str, dict[str, EvalResult]]) -> str:
    """A Markdown table: one row per condition, success / crash / final distance / chatter per policy."""
    roles = list(next(iter(results.values())))
    head = "| condition | kind | " + " | ".join(
        f"{r} success | {r} crash | {r} final dist. | {r} mean abs(Δa) | {r} at limit" for r in roles) + " |"
    lines = [head, "|" + "---|" * (2 + 5 * len(roles))]
    for name, per_role in results.items():
        cells = []
        for r in roles:
            e = per_role[r]
            cells += [f"{100 * e.success_rate:.2f} %", f"{100 * e.crash_rate:.2f} %",
                      f"{100 * e.final_distance_m:.2f} cm", f"{e.action_rate:.3f}",
                      f"{100 * e.at_limit_fraction:.2f} %"]
        lines.append(f"| {name} | {CONDITIONS[name][0]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _json_result(result: EvalResult) -> dict:
    """``result`` as a dict for strict JSON (NaN, e.g. the final distance when every episode crashed, as null)."""
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in asdict(result).items()}


def main(argv: list[str] | None = None) -> dict:
    """Evaluate both policies under every selected condition; returns the JSON document written to ``--out``."""
    args = parse_args(argv)
    torch.set_num_threads(1)
    policies: dict[str, torch.nn.Module] = {}
    checkpoints: dict[str, str] = {}
    results: dict[str, dict[str, EvalResult]] = {}
    start = time.time()
    for name in args.conditions:
        try:
            env_cfg = condition_cfg(name, args.num_episodes, args.seed, args.device)
        except ConfigError as err:
            raise SystemExit(f"error: condition {name}: {err}") from None
        env = RslRlVecEnvWrapper(make_env("point_ctrl", env_cfg))
        if not policies:  # the runners need an env to size their models; every condition has the same sizes
            for role in args.roles:
                ckpt = args.teacher if role == "teacher" else args.student
                policies[role], checkpoints[role] = load_policy(role, ckpt, env, args.device,
                                                                args.allow_unsafe_checkpoint)
                print(f"[info] {role}: {checkpoints[role]}")
        results[name] = {role: evaluate(policy, env, seed=args.seed) for role, policy in policies.items()}
        print(f"[eval] {name}: " + "; ".join(f"{r} {e}" for r, e in results[name].items()), flush=True)
        env.close()
    table = format_table(results)
    print(table)
    print(f"[info] {len(results)} conditions x {len(policies)} policies x {args.num_episodes} episodes in "
          f"{time.time() - start:.0f} s")
    doc = {"checkpoints": checkpoints, "num_episodes": args.num_episodes, "seed": args.seed,
           "nominal_overrides": list(NOMINAL),
           "conditions": {name: {"kind": CONDITIONS[name][0], "overrides": list(CONDITIONS[name][1]),
                                 **{role: _json_result(e) for role, e in results[name].items()}}
                          for name in results},
           "table": table}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=1, allow_nan=False)
    print(f"[info] Wrote {args.out}")
    return doc


if __name__ == "__main__":
    cli.run_script(main)
