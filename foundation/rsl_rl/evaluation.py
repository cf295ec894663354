"""Deterministic policy evaluation: one full episode per environment, reported as success / crash / final error and
how much the commands chatter."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from foundation.envs import RslRlVecEnvWrapper


@dataclass
class EvalResult:
    """Outcome of an evaluation over ``num_episodes`` episodes.

    Attributes:
        success_rate: Fraction of episodes that ended in success.
        crash_rate: Fraction of episodes that ended in a failure termination (crash).
        final_distance_m: Mean final error of the episodes that were not crashes (metres), NaN if all crashed.
        num_episodes: Number of episodes.
        action_rate: Chatter: mean |a_t - a_{t-1}| per step and action component within an episode, actions
            clipped to the action space [-1, 1] (so 2 is a jump from one limit to the other); NaN if not measured.
        at_limit_fraction: Fraction of action components at a limit (|a| >= 1 after clipping); NaN if not
            measured.
    """

    success_rate: float
    crash_rate: float
    final_distance_m: float
    num_episodes: int
    action_rate: float = float("nan")
    at_limit_fraction: float = float("nan")

    @classmethod
    def from_outcomes(cls, success: torch.Tensor, crash: torch.Tensor, final_distance: torch.Tensor) -> EvalResult:
        """Aggregate per-episode outcomes, each (E,): success and crash bool, final distance in metres (its mean
        is over the episodes that did not crash). E = 0 gives NaN rates."""
        if len(success) == 0:
            return cls(float("nan"), float("nan"), float("nan"), 0)
        survived = ~crash
        final = final_distance[survived].float().mean().item() if survived.any() else float("nan")
        return cls(success.float().mean().item(), crash.float().mean().item(), final, len(success))

    def as_log(self, prefix: str) -> dict[str, float]:
        """The metrics as ``{f"{prefix}/success_rate": ...}`` for TensorBoard (chatter only when measured)."""
        log = {f"{prefix}/success_rate": self.success_rate, f"{prefix}/crash_rate": self.crash_rate,
               f"{prefix}/final_distance": self.final_distance_m}
        if not math.isnan(self.action_rate):
            log.update({f"{prefix}/action_rate": self.action_rate,
                        f"{prefix}/at_limit_fraction": self.at_limit_fraction})
        return log

    def score(self, distance_weight: float) -> float:
        """``success_rate - distance_weight * final_distance_m`` (higher is better; -inf if every episode crashed)."""
        if math.isnan(self.final_distance_m):
            return -math.inf
        return self.success_rate - distance_weight * self.final_distance_m

    def __str__(self) -> str:
        chatter = "" if math.isnan(self.action_rate) else (
            f", mean |Δa| {self.action_rate:.3f}, at limit {100 * self.at_limit_fraction:.2f} %")
        return (f"success {100 * self.success_rate:.2f} %, crash {100 * self.crash_rate:.2f} %, "
                f"final distance {100 * self.final_distance_m:.2f} cm over {self.num_episodes} episodes{chatter}")


@torch.inference_mode()
def evaluate(policy: torch.nn.Module, env: RslRlVecEnvWrapper, seed: int | None = None) -> EvalResult:
    """Run the deterministic ``policy`` for one episode in every environment of ``env``.

    Every environment is reset first (with ``seed`` when given, for repeatable evaluations), then stepped until each
    has finished its first episode; later episodes are ignored, so ``num_episodes == env.num_envs``.

    Args:
        policy: An rsl-rl model (``MLPModel``/``RNNModel``) mapping the observation TensorDict to (N, A) actions;
            called without ``stochastic_output``, i.e. deterministically. Recurrent state is reset at the start and
            at every episode end.
        env: The wrapped environment; its task must report ``extras["episode_outcomes"]``.
        seed: Reseeds the environment's generator.

    Returns:
        The :class:`EvalResult`, with the chatter metrics over every step of the evaluated episodes (the first step
        of an episode has no previous action and counts only towards ``at_limit_fraction``).

    Raises:
        RuntimeError: if some episode did not end within ``max_episode_length + 1`` steps or the task reports no
            outcomes.
    """
    n, dev = env.num_envs, env.device
    obs, _ = env.reset(seed)
    policy.reset()
    done = torch.zeros(n, dtype=torch.bool, device=dev)
    success = torch.zeros(n, dtype=torch.bool, device=dev)
    crash = torch.zeros_like(success)
    distance = torch.zeros(n, device=dev)
    has_prev = torch.zeros(n, dtype=torch.bool, device=dev)  # a previous action in the same episode
    prev = torch.zeros(n, env.num_actions, device=dev)
    delta_sum = at_limit = 0.0
    delta_count = action_count = 0
    for _ in range(int(env.max_episode_length) + 1):
        actions = policy(obs)
        clipped = actions.clamp(-1.0, 1.0)
        counted = has_prev & ~done
        delta_sum += (clipped - prev)[counted].abs().sum().item()
        delta_count += int(counted.sum()) * env.num_actions
        at_limit += (clipped[~done].abs() >= 1.0).sum().item()
        action_count += int((~done).sum()) * env.num_actions
        obs, _, dones, extras = env.step(actions)
        prev, has_prev = clipped, ~dones.bool()
        outcomes = extras.get("episode_outcomes")
        if outcomes is not None:
            ids = outcomes["env_ids"]
            first = ids[~done[ids]]
            keep = ~done[ids]
            success[first] = outcomes["success"][keep]
            crash[first] = outcomes["crash"][keep]
            distance[first] = outcomes["final_distance"][keep].float()
            done[first] = True
        policy.reset(dones)
        if done.all():
            break
    if not done.all():
        raise RuntimeError(f"{int((~done).sum())} of {n} evaluation episodes did not end within "
                           f"{int(env.max_episode_length) + 1} steps, or the task reports no episode_outcomes.")
    result = EvalResult.from_outcomes(success, crash, distance)
    result.action_rate = delta_sum / max(delta_count, 1)
    result.at_limit_fraction = at_limit / max(action_count, 1)
    return result
