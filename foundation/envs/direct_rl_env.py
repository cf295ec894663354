"""``DirectRLEnv``: the base of every task, with Isaac Lab's hook names on top of a batched MuJoCo backend.

``step()`` calls the hooks in this order, as Isaac Lab's ``DirectRLEnv`` does::

    _pre_physics_step(actions)            # once per policy step
    repeat decimation: _apply_action(); physics step
                                          # (once, then decimation physics steps in one call, when the task
                                          #  declares constant_action_across_substeps and the backend fuses them)
    _get_dones() -> (terminated, time_outs)
    _get_rewards() -> (N,)
    _reset_idx(env_ids)                   # envs that are done
    _get_observations() -> {"policy": (N, D), ...}

Environments whose physics state became non-finite, or left the task's physical bounds (``cfg.max_abs_qpos``,
``cfg.max_abs_qvel``: a finite blow-up), are reset to the model's default state before the dones and rewards are
computed, get reward 0 and ``terminated=True``, and are counted in ``extras["log"]`` under
``Episode_Termination/nonfinite_physics`` and ``Episode_Termination/runaway_state``; a run never crashes on them.
"""

from __future__ import annotations

import math
import secrets

import gymnasium as gym
import mujoco
import numpy as np
import torch

from foundation.envs.direct_rl_env_cfg import DirectRLEnvCfg
from foundation.sim import PhysicsBackend, check_device, make_backend
from foundation.utils.config import validate


class DirectRLEnv(gym.Env):
    """Vectorized environment of ``cfg.scene.num_envs`` copies of one task, all tensors batched on ``self.device``.

    Subclasses implement ``_setup_scene`` (returns the single-env ``mujoco.MjSpec``) and the hooks listed in the
    module docstring.

    Attributes:
        cfg: The environment config.
        sim: The physics backend.
        num_envs: Number of environments N.
        device: Torch device of all env tensors.
        step_dt: Policy step, ``decimation * sim.dt`` seconds.
        max_episode_length: Episode length in policy steps, ``ceil(episode_length_s / step_dt)``.
        episode_length_buf: (N,) int64 policy steps elapsed in each env's episode (assignable).
        reset_terminated, reset_time_outs, reset_buf: (N,) bool done flags of the last step.
        extras: Dict returned by ``step``. ``extras["log"]`` holds scalar metrics of the episodes that just ended;
            ``extras["episode_outcomes"]`` (present when episodes ended) holds their per-episode outcomes:
            ``env_ids`` (K,) int64, ``success`` (K,) bool, ``crash`` (K,) bool, ``final_distance`` (K,) float
            (the task's final error, metres).

    Raises:
        ValueError: on an invalid config (see ``DirectRLEnvCfg.validate``) or backend/device combination.
    """

    metadata = {"render_modes": [None]}  # rendering lives in foundation.rsl_rl.rendering (play.py)
    #: A task sets this when its ``_apply_action`` writes the same controls at every physics step of a policy step
    #: (e.g. joint position targets held over the decimation). A backend that fuses substeps (``mujoco_batch``) then
    #: runs them in one call after one ``_apply_action``; otherwise ``_apply_action`` runs before each physics step.
    constant_action_across_substeps: bool = False

    def __init__(self, cfg: DirectRLEnvCfg, render_mode: str | None = None, **kwargs) -> None:
        validate({"env": cfg})  # the whole tree, sim.mujoco included
        self.cfg = cfg
        self.render_mode = render_mode
        self.num_envs = cfg.scene.num_envs
        self.device = check_device(cfg.sim.device)
        self.physics_dt = cfg.sim.dt
        self.step_dt = cfg.decimation * cfg.sim.dt
        self.max_episode_length = math.ceil(cfg.episode_length_s / self.step_dt)
        self.generator = torch.Generator(device=self.device)
        # Unseeded: a fresh random seed, drawn without touching torch's global generator.
        self.generator.manual_seed(cfg.seed if cfg.seed is not None else secrets.randbits(63))

        spec = self._setup_scene()
        spec.option.timestep = cfg.sim.dt
        cfg.sim.mujoco.apply_to(spec)
        self.sim: PhysicsBackend = make_backend(
            spec, self.num_envs, cfg.sim.backend, cfg.sim.device, cfg.scene.env_spacing, cfg.sim.nconmax,
            cfg.sim.njmax, cfg.sim.nthread)

        n = self.num_envs
        self.episode_length_buf = torch.zeros(n, dtype=torch.long, device=self.device)
        self.reset_terminated = torch.zeros(n, dtype=torch.bool, device=self.device)
        self.reset_time_outs = torch.zeros_like(self.reset_terminated)
        self.reset_buf = torch.zeros_like(self.reset_terminated)
        self.extras: dict = {"log": {}}
        self.single_observation_space = gym.spaces.Dict(
            {k: gym.spaces.Box(-np.inf, np.inf, (v,)) for k, v in self.observation_sizes().items()})
        self.single_action_space = gym.spaces.Box(-1.0, 1.0, (cfg.action_space,))
        self._obs_buf: dict[str, torch.Tensor] | None = None

    # ---------------------------------------------------------------------------------------------------- api
    @property
    def num_actions(self) -> int:
        """Number of actions per environment."""
        return self.cfg.action_space

    def observation_sizes(self) -> dict[str, int]:
        """Size of each observation group, e.g. ``{"policy": 18, "teacher": 30}``."""
        return {"policy": self.cfg.observation_space}

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict[str, torch.Tensor], dict]:
        """Reset every environment and return ``(observations, extras)``.

        Args:
            seed: Reseeds the environment's generator when given.
        """
        if seed is not None:
            self.generator.manual_seed(seed)
        self.extras = {"log": {}}
        self.episode_length_buf.zero_()  # aborted, not finished: tasks log no episode outcomes for them
        self._reset_idx(torch.arange(self.num_envs, device=self.device))
        self.sim.kinematics()
        self._obs_buf = self._get_observations()
        return self._obs_buf, self.extras

    def get_observations(self) -> dict[str, torch.Tensor]:
        """Observations of the current state (resets every env on the first call)."""
        if self._obs_buf is None:
            self.reset()
        return self._obs_buf

    def step(self, action: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor,
                                                   torch.Tensor, dict]:
        """Advance every environment by one policy step.

        Args:
            action: (N, num_actions) actions, normally in [-1, 1].

        Returns:
            ``(obs, reward, terminated, time_outs, extras)``: observation groups (N, D_g), reward (N,), terminated
            (N,) bool (failure), time_outs (N,) bool (episode length reached), extras dict with ``"log"``.

        Raises:
            ValueError: if ``action`` does not have shape (N, num_actions).
        """
        if action.shape != (self.num_envs, self.num_actions):
            raise ValueError(f"Expected actions of shape ({self.num_envs}, {self.num_actions}), "
                             f"got {tuple(action.shape)}.")
        self.extras = {"log": {}}
        self._pre_physics_step(action.to(self.device))
        if self.constant_action_across_substeps and self.sim.fuses_substeps:
            self._apply_action()  # the same controls for every substep: one backend call for all of them
            self.sim.step(self.cfg.decimation)
        else:
            for _ in range(self.cfg.decimation):
                self._apply_action()
                self.sim.step()
        self.episode_length_buf += 1

        nonfinite = self.sim.nonfinite_envs()
        runaway = self._runaway_envs() & ~nonfinite
        num_nonfinite, num_runaway = int(nonfinite.sum()), int(runaway.sum())
        nonfinite = nonfinite | runaway  # from here on: every env whose state is unusable
        if num_nonfinite or num_runaway:
            self.sim.reset_to_default(nonfinite.nonzero(as_tuple=False).squeeze(-1))
        terminated, time_outs = self._get_dones()
        # New tensors, never in-place: a task may return its own buffers, which its _reset_idx then clears.
        self.reset_terminated = terminated | nonfinite
        self.reset_time_outs = time_outs & ~self.reset_terminated
        self.reset_buf = self.reset_terminated | self.reset_time_outs
        reward = self._get_rewards()
        reward = torch.where(nonfinite, torch.zeros_like(reward), reward)

        reset_env_ids = self.reset_buf.nonzero(as_tuple=False).squeeze(-1)
        if len(reset_env_ids) > 0:
            self._reset_idx(reset_env_ids)
            self.sim.kinematics()
            self.extras["log"]["Episode_Termination/nonfinite_physics"] = float(num_nonfinite)
            self.extras["log"]["Episode_Termination/runaway_state"] = float(num_runaway)
        self._obs_buf = self._get_observations()
        return self._obs_buf, reward, self.reset_terminated, self.reset_time_outs, self.extras

    def close(self) -> None:
        """Release the backend."""
        self.sim = None  # type: ignore[assignment]

    def _runaway_envs(self) -> torch.Tensor:
        """(N,) bool: envs with a finite state beyond the task's physical bound (``cfg.max_abs_qpos`` on free-joint
        positions relative to the env origin and on every other ``qpos``, ``cfg.max_abs_qvel`` on ``qvel``)."""
        out = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        if self.cfg.max_abs_qvel is not None:
            out |= (self.sim.qvel.abs() > self.cfg.max_abs_qvel).any(dim=1)
        if self.cfg.max_abs_qpos is not None:
            qpos = self.sim.qpos.clone()
            cols = self.sim.free_pos_cols
            qpos[:, cols] -= self.sim.env_origins.repeat(1, len(cols) // 3)
            out |= (qpos.abs() > self.cfg.max_abs_qpos).any(dim=1)
        return out

    # ----------------------------------------------------------------------------------------- task hooks
    def _setup_scene(self) -> mujoco.MjSpec:
        """Return the single-environment model (one robot and its surroundings)."""
        raise NotImplementedError

    def _pre_physics_step(self, actions: torch.Tensor) -> None:
        """Store/process the (N, num_actions) policy actions once per policy step."""
        raise NotImplementedError

    def _apply_action(self) -> None:
        """Write controls or forces into the backend before each physics step."""
        raise NotImplementedError

    def _get_observations(self) -> dict[str, torch.Tensor]:
        """Return the observation groups, each (N, D_g) float32."""
        raise NotImplementedError

    def _get_rewards(self) -> torch.Tensor:
        """Return the (N,) float32 reward of the last policy step."""
        raise NotImplementedError

    def _get_dones(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(terminated, time_outs)``, each (N,) bool."""
        raise NotImplementedError

    def _reset_idx(self, env_ids: torch.Tensor) -> None:
        """Reset the (K,) int64 ``env_ids``: the base clears their episode counter; tasks reset their state."""
        self.episode_length_buf[env_ids] = 0
