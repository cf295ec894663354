"""Scripted-insertion baseline of the gear-assembly task, through the env API: success / drop / final xy error.

    python scripts/eval_scripted_gear.py [--num_envs 256] [--estimate_error_mm 5] [--seed 1] [overrides...]

The scripted controller (``foundation.tasks.gear_assembly.scripted``: move above the shaft, descend along its axis)
is driven as a policy of the ``gear_assembly`` env: each step its TCP target becomes the action
``(target - tcp) / action.pos_scale_m`` (yaw 0), so it goes through the same IK, servos and contact as a learned
policy. It aims at the shaft tip the env reports plus the episode's shaft-estimate error (the env's per-reset draw,
each axis ~ U(±estimate_error_mm)): 0 is the exact shaft pose. One episode per environment, evaluated by
``foundation.rsl_rl.evaluation.evaluate`` as the learned policies are; the printed numbers are the README's baseline
row.
"""

from __future__ import annotations

import argparse
import time

import torch

from foundation.envs import RslRlVecEnvWrapper
from foundation.rsl_rl.evaluation import EvalResult, evaluate
from foundation.tasks import load_task_cfgs, make_env
from foundation.tasks.gear_assembly.gear_assembly_env import GearAssemblyEnv
from foundation.tasks.gear_assembly.scripted import ScriptedInsertion, ScriptedInsertionCfg
from foundation.utils.config import apply_overrides


class ScriptedPolicy(torch.nn.Module):
    """The scripted insertion as a policy of a :class:`GearAssemblyEnv` (the interface ``evaluate`` calls).

    It reads the TCP, the exact shaft pose and the episode's estimate error from the env (not from the observation),
    and returns (N, 4) actions in [-1, 1].
    """

    def __init__(self, env: GearAssemblyEnv, cfg: ScriptedInsertionCfg | None = None) -> None:
        super().__init__()
        self.env = env
        self.controller = ScriptedInsertion(env.num_envs, cfg, env.device)
        if self.controller.cfg.max_step_m > env.cfg.action.pos_scale_m + 1e-12:
            raise ValueError(f"The scripted controller's max_step_m ({self.controller.cfg.max_step_m}) exceeds the "
                             f"action scale ({env.cfg.action.pos_scale_m} m): its steps would be clipped.")

    def reset(self, dones: torch.Tensor | None = None) -> None:
        """Restart the phase machine of the envs whose episode ended (all when ``dones`` is None)."""
        self.controller.reset(None if dones is None else dones.nonzero(as_tuple=False).squeeze(-1))

    def forward(self, obs) -> torch.Tensor:  # noqa: ARG002  (the controller reads the env, not the observation)
        env = self.env
        error = env.shaft_estimate_error()
        tcp = env.tcp_pos()
        target = self.controller.compute(tcp, env.shaft_tip_pos() + error, env.shaft_seated_pos() + error)
        actions = torch.zeros(env.num_envs, env.num_actions, device=env.device)
        actions[:, :3] = (target - tcp) / env.cfg.action.pos_scale_m
        return actions.clamp(-1.0, 1.0)


class _FirstOutcomes(RslRlVecEnvWrapper):
    """The rsl-rl wrapper, also keeping each env's first episode's ``time_to_success`` (s, NaN if none)."""

    def __init__(self, env: GearAssemblyEnv) -> None:
        super().__init__(env)
        self.time_to_success = torch.full((env.num_envs,), float("nan"))
        self._seen = torch.zeros(env.num_envs, dtype=torch.bool)

    def step(self, actions):
        out = super().step(actions)
        outcomes = out[3].get("episode_outcomes")
        if outcomes is not None:
            ids = outcomes["env_ids"][~self._seen[outcomes["env_ids"]]]
            self.time_to_success[ids] = outcomes["time_to_success"][~self._seen[outcomes["env_ids"]]].cpu()
            self._seen[ids] = True
        return out


def run(num_envs: int, estimate_error_mm: float, seed: int, overrides: list[str]) -> tuple[EvalResult, dict]:
    """Evaluate the scripted insertion on ``num_envs`` episodes; returns the result and extra metrics
    (``time_to_success_s``: mean over successful episodes, ``seconds``: wall-clock).

    Raises:
        ConfigError: on a bad override.
    """
    env_cfg, _ = load_task_cfgs("gear_assembly")
    env_cfg = apply_overrides({"env": env_cfg}, [f"env.scene.num_envs={num_envs}", f"env.seed={seed}",
                                                 f"env.noise.shaft_estimate_error_m={estimate_error_mm / 1000.0}",
                                                 *overrides])["env"]
    env = make_env("gear_assembly", env_cfg)
    wrapped = _FirstOutcomes(env)
    start = time.perf_counter()
    result = evaluate(ScriptedPolicy(env), wrapped, seed=seed)
    times = wrapped.time_to_success[~torch.isnan(wrapped.time_to_success)]
    extra = {"time_to_success_s": times.mean().item() if len(times) else float("nan"),
             "seconds": time.perf_counter() - start}
    return result, extra


def main() -> None:
    """Parse the flags, run the evaluation, print one line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num_envs", type=int, default=256, help="Episodes (one per environment).")
    parser.add_argument("--estimate_error_mm", type=float, default=0.0,
                        help="Bound of the per-episode shaft-estimate error, each axis ~ U(±bound), mm.")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("overrides", nargs="*", help="env.* overrides, e.g. env.episode_length_s=8")
    args = parser.parse_args()
    torch.set_num_threads(1)
    result, extra = run(args.num_envs, args.estimate_error_mm, args.seed, args.overrides)
    print(f"scripted insertion, shaft estimate error ±{args.estimate_error_mm:g} mm: success "
          f"{100 * result.success_rate:.1f} %, drop {100 * result.crash_rate:.1f} %, final xy error "
          f"{1000 * result.final_distance_m:.2f} mm, time to success {extra['time_to_success_s']:.2f} s "
          f"({result.num_episodes} episodes, {extra['seconds']:.0f} s wall-clock)")


if __name__ == "__main__":
    main()
