"""Adapter from :class:`DirectRLEnv` to rsl-rl 5.5.1's ``VecEnv`` contract (TensorDict observations, done flags)."""

from __future__ import annotations

import torch
from rsl_rl.env import VecEnv
from tensordict import TensorDict

from foundation.envs.direct_rl_env import DirectRLEnv


class RslRlVecEnvWrapper(VecEnv):
    """Wraps a :class:`DirectRLEnv` for rsl-rl's runners.

    ``step`` returns ``(obs TensorDict[N], rewards (N,), dones (N,) long, extras)`` where
    ``extras["time_outs"]`` (N,) bool marks episodes cut by the time limit (rsl-rl bootstraps their values) and
    ``extras["log"]`` holds the metrics to log. Actions are clipped to ``[-clip_actions, clip_actions]``.

    A non-finite reward or observation never reaches the learner: such entries are replaced by 0, the env is
    marked done (terminated, so nothing is bootstrapped from its state), and the number of envs concerned is
    logged as ``Episode_Termination/nonfinite_output``. (The env layer already resets envs whose physics blew up;
    this catches a task's own reward or observation code.)

    Args:
        env: The environment to wrap.
        clip_actions: Symmetric action bound, or ``None`` for no clipping.
    """

    def __init__(self, env: DirectRLEnv, clip_actions: float | None = 1.0) -> None:
        self.env = env
        self.clip_actions = clip_actions
        self.num_envs = env.num_envs
        self.num_actions = env.num_actions
        self.max_episode_length = env.max_episode_length
        self.device = env.device
        self.cfg = env.cfg

    @property
    def unwrapped(self) -> DirectRLEnv:
        """The wrapped environment."""
        return self.env

    @property
    def episode_length_buf(self) -> torch.Tensor:
        """(N,) int64 policy steps elapsed in each episode; assign to randomise initial episode lengths."""
        return self.env.episode_length_buf

    @episode_length_buf.setter
    def episode_length_buf(self, value: torch.Tensor) -> None:
        self.env.episode_length_buf = value

    def get_observations(self) -> TensorDict:
        """Current observation groups as a ``TensorDict`` of batch size [N]."""
        return TensorDict(self.env.get_observations(), batch_size=[self.num_envs])

    def reset(self, seed: int | None = None) -> tuple[TensorDict, dict]:
        """Reset every environment (reseeding its generator when ``seed`` is given); returns ``(obs, extras)``."""
        obs, extras = self.env.reset(seed=seed)
        return TensorDict(obs, batch_size=[self.num_envs]), extras

    def step(self, actions: torch.Tensor) -> tuple[TensorDict, torch.Tensor, torch.Tensor, dict]:
        """Step with (N, num_actions) actions; see the class docstring for the returns."""
        if self.clip_actions is not None:
            actions = torch.clamp(actions, -self.clip_actions, self.clip_actions)
        obs, rew, terminated, truncated, extras = self.env.step(actions)
        bad = ~torch.isfinite(rew)
        for value in obs.values():
            bad |= ~torch.isfinite(value).all(dim=-1)
        if bad.any():
            rew = torch.where(bad, torch.zeros_like(rew), rew)
            obs = {k: torch.nan_to_num(v, nan=0.0, posinf=0.0, neginf=0.0) for k, v in obs.items()}
            terminated, truncated = terminated | bad, truncated & ~bad
        extras.setdefault("log", {})["Episode_Termination/nonfinite_output"] = bad.sum().float()
        dones = (terminated | truncated).to(torch.long)
        extras["time_outs"] = truncated
        return TensorDict(obs, batch_size=[self.num_envs]), rew, dones, extras

    def close(self) -> None:
        """Close the wrapped environment."""
        self.env.close()
