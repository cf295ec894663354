"""Configuration dataclasses of the direct-RL environment layer, named as Isaac Lab's ``DirectRLEnvCfg``."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Literal

from foundation.sim.options import MujocoCfg
from foundation.sim.usd import USD_EXTENSIONS


@dataclass
class SimCfg:
    """Physics settings.

    Attributes:
        dt: Physics time step, seconds (overrides the MJCF ``timestep``).
        backend: ``"auto"`` (MuJoCo C on CPU, MuJoCo Warp on CUDA), ``"mujoco"`` (one model of N copies: fastest
            for contact-free scenes), ``"mujoco_batch"`` (N simulations on ``nthread`` threads: meant for
            contact-rich scenes; time both with ``scripts/benchmark_env.py``) or ``"mujoco_warp"``
            (``foundation.sim.make_backend``).
        device: Torch device of the environment tensors, ``"cpu"`` or ``"cuda[:k]"``.
        nconmax: Contacts per world for MuJoCo Warp (``None``: its default).
        njmax: Constraint rows per world for MuJoCo Warp (``None``: its default).
        nthread: Threads of the ``"mujoco_batch"`` backend (0: one per CPU core).
        mujoco: Solver and integrator options written into the model before it is compiled (``None`` fields leave
            the MJCF's values).
    """

    dt: float = 1.0 / 100.0
    backend: Literal["auto", "mujoco", "mujoco_batch", "mujoco_warp"] = "auto"
    device: str = "cpu"
    nconmax: int | None = None
    njmax: int | None = None
    nthread: int = 0
    mujoco: MujocoCfg = field(default_factory=MujocoCfg)


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
class SpawnCfg:
    """Where a robot's model comes from, with Isaac Lab's name (``sim_utils.UsdFileCfg(usd_path=...)``).

    Attributes:
        usd_path: OpenUSD file of the robot (e.g. ``USD/crazyflie/cf2x.usda``, relative to the working directory),
            loaded instead of the task's MJCF ``asset_path`` with MuJoCo's USD decoder (``foundation.sim.usd``).
            None: the MJCF.

    Raises:
        ValueError: if ``usd_path`` does not exist or has no USD extension (``.usd``, ``.usda``, ``.usdc``).
    """

    usd_path: str | None = None

    def __post_init__(self) -> None:
        if self.usd_path is None:
            return
        if not self.usd_path.lower().endswith(USD_EXTENSIONS):
            raise ValueError(f"spawn.usd_path '{self.usd_path}' is not a USD file ({', '.join(USD_EXTENSIONS)}); "
                             "an MJCF file goes in the robot's asset_path.")
        if not os.path.isfile(self.usd_path):
            raise ValueError(f"spawn.usd_path '{self.usd_path}' does not exist (from {os.getcwd()}).")


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
    """

    sim: SimCfg = field(default_factory=SimCfg)
    scene: SceneCfg = field(default_factory=SceneCfg)
    decimation: int = 2
    episode_length_s: float = 10.0
    observation_space: int = 0
    action_space: int = 0
    seed: int | None = None

    def validate(self) -> None:
        """Raise ``ValueError`` naming every field whose value is out of range."""
        errors = []
        if self.scene.num_envs < 1:
            errors.append(f"scene.num_envs must be >= 1, got {self.scene.num_envs}")
        if self.decimation < 1:
            errors.append(f"decimation must be >= 1, got {self.decimation}")
        if self.sim.dt <= 0:
            errors.append(f"sim.dt must be > 0 s, got {self.sim.dt}")
        if self.episode_length_s < self.sim.dt * self.decimation:
            errors.append(f"episode_length_s ({self.episode_length_s}) must cover at least one policy step "
                          f"({self.sim.dt * self.decimation} s)")
        if self.scene.env_spacing < 0:
            errors.append(f"scene.env_spacing must be >= 0 m, got {self.scene.env_spacing}")
        if self.sim.nthread < 0:
            errors.append(f"sim.nthread must be >= 0 (0: one per CPU core), got {self.sim.nthread}")
        errors += self.sim.mujoco.validate()
        if errors:
            raise ValueError("Invalid environment config: " + "; ".join(errors) + ".")
