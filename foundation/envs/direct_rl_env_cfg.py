"""Configuration dataclasses of the direct-RL environment layer, named as Isaac Lab's ``DirectRLEnvCfg``."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Literal

from foundation.sim.options import MujocoCfg
from foundation.sim.usd import USD_EXTENSIONS
from foundation.utils.config import FieldChecks

#: Upper bound of ``scene.num_envs``: beyond it a run would exhaust host memory while building the scene (10^7 envs
#: grew to 13 GB without a word), so it is refused up front.
MAX_NUM_ENVS = 2**20


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
class ViewerCfg:
    """Camera of ``play.py``'s video and viewer (Isaac Lab's ``ViewerCfg``, reduced to a tracking camera).

    Attributes:
        body_name: Body the camera tracks; ``None``: the model's first body after the world body (the robot's root).
        distance_m: Camera distance to that body, m; ``None``: ``max(1.5, 3 · model.stat.extent)``.
        azimuth_deg, elevation_deg: Camera angles, degrees (MuJoCo's ``mjvCamera`` convention).
    """

    body_name: str | None = None
    distance_m: float | None = None
    azimuth_deg: float = 135.0
    elevation_deg: float = -20.0


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
        viewer: Camera of ``play.py``.
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
    viewer: ViewerCfg = field(default_factory=ViewerCfg)

    def validate(self) -> None:
        """Raise ``ConfigError`` (a ``ValueError``) naming every field whose value is out of range."""
        c = FieldChecks(self, "environment config")
        c.in_range("scene.num_envs", 1, MAX_NUM_ENVS)
        c.at_least("decimation", 1)
        c.positive("sim.dt", " s")
        c.at_least("scene.env_spacing", 0.0, " m")
        c.at_least("sim.nthread", 0, " (0: one per CPU core)")
        if not c.lines:
            c.require(self.episode_length_s >= self.sim.dt * self.decimation, "episode_length_s",
                      f"must cover at least one policy step ({self.sim.dt * self.decimation} s)")
        for key in ("max_abs_qpos", "max_abs_qvel", "viewer.distance_m"):
            if c.value(key) is not None:
                c.positive(key)
        if self.seed is not None:
            c.require(0 <= self.seed < 2**63, "seed", "must be in [0, 2^63)")
        c.raise_errors()
