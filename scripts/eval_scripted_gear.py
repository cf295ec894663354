"""Scripted-insertion baseline of the gear-assembly task, through the env API: success, drops, final xy error and the
deepest gear-base penetration.

    python scripts/eval_scripted_gear.py [--num_envs 256] [--estimate_error_mm 5] [--seed 1] [overrides...]
    python scripts/eval_scripted_gear.py --aim_off_axis_mm 3 --max_push_mm 2.5   # is the contact honest?

The scripted controller (``foundation.tasks.gear_assembly.scripted``: move above the shaft, descend along its axis)
is driven as a policy of the ``gear_assembly`` env (``scripted_policy.ScriptedPolicy``): each step its TCP target
becomes the action ``(target - tcp) / action.pos_scale_m`` (yaw 0), so it goes through the same IK, servos and contact
as a learned policy; its largest approach step is the x, y action scale. It aims at the shaft tip the env reports
plus the episode's shaft-estimate error (the env's per-reset draw, each axis ~ U(±estimate_error_mm); 0 is the exact
shaft pose), plus, with ``--aim_off_axis_mm``, a fixed horizontal offset in a random direction per episode.
``--max_push_mm`` is how far ahead of the TCP its target may be along the shaft while descending: the push on a
blocked gear (a learned policy may push with up to the z action scale). One episode per environment, evaluated by
``foundation.rsl_rl.evaluation.evaluate`` as the learned policies are; the printed line is the README's baseline row."""

from __future__ import annotations

import argparse
import time

import torch

from foundation.envs import RslRlVecEnvWrapper
from foundation.rsl_rl.evaluation import EvalResult, evaluate
from foundation.tasks import load_task_cfgs, make_env
from foundation.tasks.gear_assembly.gear_assembly_env import GearAssemblyEnv
from foundation.tasks.gear_assembly.scripted import ScriptedInsertionCfg
from foundation.tasks.gear_assembly.scripted_policy import ScriptedPolicy
from foundation.utils.config import apply_overrides


class _FirstEpisodes(RslRlVecEnvWrapper):
    """The rsl-rl wrapper, also recording each env's first episode's time to success (s, NaN if none) and deepest
    gear-base penetration (m)."""

    def __init__(self, env: GearAssemblyEnv) -> None:
        super().__init__(env)
        gc = env.cfg.gear_scene
        self._gear_geoms = env.sim.body_geom_ids(gc.gear_body)
        self._base_geoms = env.sim.body_geom_ids(gc.base_body)
        self.time_to_success = torch.full((env.num_envs,), float("nan"))
        self.max_penetration = torch.zeros(env.num_envs)
        self._done = torch.zeros(env.num_envs, dtype=torch.bool)

    def step(self, actions):
        penetration = self.env.sim.max_penetration(self._gear_geoms, self._base_geoms).float().cpu()
        self.max_penetration = torch.where(self._done, self.max_penetration,
                                           torch.maximum(self.max_penetration, penetration))
        out = super().step(actions)
        outcomes = out[3].get("episode_outcomes")
        if outcomes is not None:
            first = ~self._done[outcomes["env_ids"].cpu()]
            ids = outcomes["env_ids"].cpu()[first]
            self.time_to_success[ids] = outcomes["time_to_success"].cpu()[first]
            self._done[ids] = True
        return out


def run(num_envs: int, estimate_error_mm: float, seed: int, overrides: list[str], aim_off_axis_mm: float = 0.0,
        max_push_mm: float | None = None) -> tuple[EvalResult, dict]:
    """Evaluate the scripted insertion on ``num_envs`` episodes.

    Returns:
        The :class:`EvalResult` and ``{"time_to_success_s": mean over successful episodes, "max_penetration_m":
        deepest gear-base penetration of any episode, "seconds": wall-clock}``.

    Raises:
        ConfigError: on a bad override.
    """
    env_cfg, _ = load_task_cfgs("gear_assembly")
    env_cfg = apply_overrides({"env": env_cfg}, [f"env.scene.num_envs={num_envs}", f"env.seed={seed}",
                                                 f"env.noise.shaft_estimate_error_m={estimate_error_mm / 1000.0}",
                                                 *overrides])["env"]
    env = make_env("gear_assembly", env_cfg)
    cfg = ScriptedInsertionCfg(max_step_m=env_cfg.action.pos_scale_m[0])
    if max_push_mm is not None:
        cfg.max_push_m = max_push_mm / 1000.0
    wrapped = _FirstEpisodes(env)
    start = time.perf_counter()
    result = evaluate(ScriptedPolicy(env, cfg, aim_off_axis_mm / 1000.0), wrapped, seed=seed)
    times = wrapped.time_to_success[~torch.isnan(wrapped.time_to_success)]
    extra = {"time_to_success_s": times.mean().item() if len(times) else float("nan"),
             "max_penetration_m": wrapped.max_penetration.max().item(), "seconds": time.perf_counter() - start}
    return result, extra


def main() -> None:
    """Parse the flags, run the evaluation, print one line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num_envs", type=int, default=256, help="Episodes (one per environment).")
    parser.add_argument("--estimate_error_mm", type=float, default=0.0,
                        help="Bound of the per-episode shaft-estimate error, each axis ~ U(±bound), mm.")
    parser.add_argument("--aim_off_axis_mm", type=float, default=0.0,
                        help="Fixed horizontal aiming error in a random direction per episode, mm.")
    parser.add_argument("--max_push_mm", type=float, default=None,
                        help="Lead of the target over the TCP while descending, mm (default: the controller's).")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("overrides", nargs="*", help="env.* overrides, e.g. env.episode_length_s=8")
    args = parser.parse_args()
    torch.set_num_threads(1)
    result, extra = run(args.num_envs, args.estimate_error_mm, args.seed, args.overrides, args.aim_off_axis_mm,
                        args.max_push_mm)
    print(f"scripted insertion, shaft estimate error ±{args.estimate_error_mm:g} mm"
          f"{f', aimed {args.aim_off_axis_mm:g} mm off the axis' if args.aim_off_axis_mm else ''}: success "
          f"{100 * result.success_rate:.1f} %, drop {100 * result.crash_rate:.1f} %, final xy error "
          f"{1000 * result.final_distance_m:.2f} mm, time to success {extra['time_to_success_s']:.2f} s, "
          f"max penetration {1000 * extra['max_penetration_m']:.2f} mm ({result.num_episodes} episodes, "
          f"{extra['seconds']:.0f} s wall-clock)")


if __name__ == "__main__":
    main()
