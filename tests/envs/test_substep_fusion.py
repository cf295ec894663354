"""``DirectRLEnv`` with a position-controlled arm: the backend and solver options chosen by the cfg, and the
decimation's physics steps fused into one backend call when the task declares its controls constant across them."""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import pytest
import torch

from foundation.envs import DirectRLEnv, DirectRLEnvCfg, SceneCfg, SimCfg
from foundation.sim import MujocoCfg, load_spec
from tests.conftest import ARM_XML

N = 4


@dataclass
class ArmCfg(DirectRLEnvCfg):
    """The 3-joint test arm; actions are joint-position targets (rad) held over a policy step."""

    sim: SimCfg = None
    scene: SceneCfg = None
    decimation: int = 4
    episode_length_s: float = 10.0
    observation_space: int = 6
    action_space: int = 3

    def __post_init__(self):
        self.sim = self.sim or SimCfg(dt=0.002)
        self.scene = self.scene or SceneCfg(num_envs=N, env_spacing=2.0)


class ArmEnv(DirectRLEnv):
    """Minimal task: joint targets from the actions, observations are joint positions and velocities."""

    def __init__(self, cfg: ArmCfg, constant: bool):
        self.constant_action_across_substeps = constant
        self.apply_calls = 0
        super().__init__(cfg)

    def _setup_scene(self) -> mujoco.MjSpec:
        return load_spec(str(ARM_XML))

    def _pre_physics_step(self, actions: torch.Tensor) -> None:
        self._targets = actions.to(self.sim.ctrl.dtype)

    def _apply_action(self) -> None:
        self.apply_calls += 1
        self.sim.ctrl[:] = self._targets

    def _get_observations(self) -> dict[str, torch.Tensor]:
        return {"policy": torch.cat([self.sim.qpos[:, :3], self.sim.qvel[:, :3]], dim=1).float()}

    def _get_rewards(self) -> torch.Tensor:
        return torch.zeros(self.num_envs)

    def _get_dones(self) -> tuple[torch.Tensor, torch.Tensor]:
        none = torch.zeros(self.num_envs, dtype=torch.bool)
        return none, self.episode_length_buf >= self.max_episode_length

    def _reset_idx(self, env_ids: torch.Tensor) -> None:
        super()._reset_idx(env_ids)
        self.sim.reset_to_default(env_ids)


def rollout(backend: str, constant: bool, steps: int = 10) -> tuple[ArmEnv, torch.Tensor]:
    cfg = ArmCfg()
    cfg.sim.backend = backend
    env = ArmEnv(cfg, constant)
    env.reset()
    actions = torch.tensor([[0.5, -0.8, 1.0], [-0.3, -0.5, 0.2], [0.0, -1.0, 0.8], [1.0, -0.2, 0.5]])
    for k in range(steps):
        obs, *_ = env.step(actions * (1 if k < steps // 2 else -1))
    return env, obs["policy"]


def test_before_its_first_reset_an_env_has_empty_extras_and_get_observations_resets_it():
    env = ArmEnv(ArmCfg(), constant=False)  # unlike point_ctrl, the arm does not reset itself in __init__
    assert env.extras == {"log": {}}
    obs = env.get_observations()
    assert obs["policy"].shape == (N, 6) and torch.isfinite(obs["policy"]).all()
    assert env.get_observations() is obs  # later calls return the current observations, no new reset


def test_constant_controls_are_fused_into_one_backend_call_on_the_batch_backend():
    fused, obs_fused = rollout("mujoco_batch", constant=True)
    looped, obs_looped = rollout("mujoco_batch", constant=False)
    assert fused.apply_calls == 10 and looped.apply_calls == 10 * 4
    assert torch.equal(obs_fused, obs_looped)  # the same physics, bit for bit
    assert obs_fused[:, :3].abs().max() > 0.1  # the arms moved (80 ms of motion)


def test_a_backend_that_does_not_fuse_keeps_the_per_substep_loop():
    env, _ = rollout("mujoco", constant=True, steps=3)
    assert env.apply_calls == 3 * 4


def test_the_cfg_chooses_the_backend_and_its_solver_options():
    cfg = ArmCfg()
    cfg.sim.backend = "mujoco_batch"
    cfg.sim.nthread = 1
    cfg.sim.mujoco = MujocoCfg(cone="elliptic", impratio=10.0, iterations=20)
    env = ArmEnv(cfg, constant=True)
    assert type(env.sim).__name__ == "MujocoBatchBackend" and env.sim.batch.nthread == 1
    opt = env.sim.model.opt
    assert opt.cone == mujoco.mjtCone.mjCONE_ELLIPTIC and opt.impratio == 10.0 and opt.iterations == 20
    assert opt.timestep == pytest.approx(0.002)
    cfg.sim.mujoco = MujocoCfg(iterations=0)
    with pytest.raises(ValueError, match="env.sim.mujoco.iterations=0: must be >= 1"):
        ArmEnv(cfg, constant=True)
