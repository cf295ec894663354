"""Configuration dataclasses of the direct-RL environment layer, named as Isaac Lab's ``DirectRLEnvCfg``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from foundation.utils.config import FieldChecks

#: Upper bound of ``scene.num_envs``: beyond it a run would exhaust host memory while building the scene (10^7 envs
#: grew to 13 GB without a word), so it is refused up front.
MAX_NUM_ENVS = 2**20


@dataclass
class SimCfg:
    """Physics settings.

    Attributes:
        dt: Physics time step, seconds (overrides the MJCF ``timestep``).
        backend: ``"auto"`` (MuJoCo C on CPU, MuJoCo Warp on CUDA), ``"mujoco"`` or ``"mujoco_warp"``.
        device: Torch device of the environment tensors, ``"cpu"`` or ``"cuda[:k]"``.
        nconmax: Contacts per world for MuJoCo Warp (``None``: its default).
        njmax: Constraint rows per world for MuJoCo Warp (``None``: its default).
    """

    dt: float = 1.0 / 100.0
    backend: Literal["auto", "mujoco", "mujoco_warp"] = "auto"
    device: str = "cpu"
    nconmax: int | None = None
    njmax: int | None = None


@dataclass
class SceneCfg:
    """Scene settings.

    Attributes:
        num_envs: Number of parallel environments.
        env_spacing: Distance between environment origins on the grid, metres (MuJoCo C backend; 0 is only safe for
            models whose copies cannot collide).
    """

    num_envs: int = 1024
    env_spacing: float = 0.0


@dataclass
class DirectRLEnvCfg:
    """Base configuration of a direct-RL environment (field names as Isaac Lab's ``DirectRLEnvCfg``).

    Attributes:
        sim: Physics settings.
        scene: Number and layout of environments.
        decimation: Physics steps per policy step; the policy runs every ``decimation * sim.dt`` seconds.
        episode_length_s: Episode duration before a time-out, seconds.
        observation_space: Size of the ``policy`` observation group.
        action_space: Number of actions.
        seed: Seed of the environment's random generator (``None``: not seeded).
        max_abs_qpos: Physical bound of every ``qpos`` entry (m or rad); an env beyond it is a runaway state, reset
            and counted like a non-finite one (``None``: no bound).
        max_abs_qvel: Physical bound of every ``qvel`` entry (m/s or rad/s), as ``max_abs_qpos``.
    """

    sim: SimCfg = field(default_factory=SimCfg)
    scene: SceneCfg = field(default_factory=SceneCfg)
    decimation: int = 2
    episode_length_s: float = 10.0
    observation_space: int = 0
    action_space: int = 0
    seed: int | None = None
    max_abs_qpos: float | None = None
    max_abs_qvel: float | None = None

    def validate(self) -> None:
        """Raise ``ConfigError`` (a ``ValueError``) naming every field whose value is out of range."""
        c = FieldChecks(self, "environment config")
        c.in_range("scene.num_envs", 1, MAX_NUM_ENVS)
        c.at_least("decimation", 1)
        c.positive("sim.dt", " s")
        c.at_least("scene.env_spacing", 0.0, " m")
        if not c.lines:
            c.require(self.episode_length_s >= self.sim.dt * self.decimation, "episode_length_s",
                      f"must cover at least one policy step ({self.sim.dt * self.decimation} s)")
        for key in ("max_abs_qpos", "max_abs_qvel"):
            if c.value(key) is not None:
                c.positive(key)
        if self.seed is not None:
            c.require(0 <= self.seed < 2**63, "seed", "must be in [0, 2^63)")
        c.raise_errors()
