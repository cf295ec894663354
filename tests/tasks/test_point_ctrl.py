"""The ``point_ctrl`` task: registry, observations, and the quadrotor's actuation (thrust-to-weight, trim, motor lag)."""

from __future__ import annotations

import math

import gymnasium as gym
import mujoco
import numpy as np
import pytest
import torch

from foundation.tasks import load_task_cfgs, make_env, registered_tasks
from foundation.tasks.point_ctrl.point_ctrl_env import GRAVITY, PointCtrlEnv
from tests.conftest import make_point_ctrl_env
from tests.tasks.test_point_ctrl_randomization import NEW_FACTORS_OFF

N = 16
#: No domain randomisation (airframe, payload, motors, latency, gusts), a level start at rest, no crash termination.
NO_DR = dict(robot__mass_range_kg=(0.027, 0.027), robot__thrust_to_weight_range=(2.25, 2.25), **NEW_FACTORS_OFF)
LEVEL_AT_REST = dict(init__max_tilt_rad=0.0, init__max_lin_vel_mps=0.0, init__max_ang_vel_radps=0.0)
NO_CRASH = dict(min_height_m=-100.0, max_height_m=100.0)


def vertical_velocity(env: PointCtrlEnv) -> torch.Tensor:
    return env.sim.qvel[:, 2].double()


def height(env: PointCtrlEnv) -> torch.Tensor:
    return (env.sim.qpos[:, 2] - env.sim.env_origins[:, 2]).double()


# ------------------------------------------------------------------------------------------------- registry
def test_registry_lists_the_point_ctrl_and_distillation_tasks():
    tasks = registered_tasks()
    assert "point_ctrl" in tasks and "distillation" in tasks
    for task in ("point_ctrl", "distillation"):
        assert task in gym.registry
        assert gym.spec(task).entry_point == "foundation.tasks.point_ctrl.point_ctrl_env:PointCtrlEnv"
    _, ppo = load_task_cfgs("point_ctrl")
    _, dagger = load_task_cfgs("distillation")
    assert ppo.runner_class_name == "OnPolicyRunner"
    assert dagger.runner_class_name == "DistillationRunner"
    assert dagger.teacher_experiment_name == ppo.experiment_name


def test_unknown_task_id_error_names_the_registered_tasks():
    with pytest.raises(ValueError) as err:
        load_task_cfgs("point_ctr")
    assert "point_ctr" in str(err.value)
    for task in registered_tasks():
        assert task in str(err.value)


def test_load_task_cfgs_returns_fresh_configs():
    env_cfg, agent_cfg = load_task_cfgs("point_ctrl")
    env_cfg.scene.num_envs = 3
    agent_cfg.algorithm.learning_rate = 1.0
    env_cfg2, agent_cfg2 = load_task_cfgs("point_ctrl")
    assert env_cfg2.scene.num_envs != 3 and agent_cfg2.algorithm.learning_rate != 1.0


def test_make_env_builds_the_configured_env():
    env_cfg, _ = load_task_cfgs("point_ctrl")
    env_cfg.scene.num_envs = 5
    env_cfg.seed = 1
    env = make_env("point_ctrl", env_cfg)
    assert isinstance(env, PointCtrlEnv) and env.num_envs == 5 and env.sim.num_envs == 5


# -------------------------------------------------------------------------------------------- observations
def test_policy_observations_are_the_noisy_deployable_part_of_the_teacher_observations():
    """teacher: pos error (3), lin vel (3), body rates (3), rotation (9), last action (4), rotor speeds (4), mass
    ratio (1), thrust-to-weight (1); policy: its first 22 entries, with sensor noise on the first 9, then the
    accelerometer (3, tested in test_point_ctrl_physics.py)."""
    env = make_point_ctrl_env(N)
    for _ in range(3):
        obs, *_ = env.step(torch.rand(N, 4) * 2 - 1)
    p, t = obs["policy"], obs["teacher"]
    noise = env.cfg.noise
    std = torch.tensor([noise.pos_m] * 3 + [noise.lin_vel_mps] * 3 + [noise.gyro_radps] * 3)
    deviation = (p[:, :9] - t[:, :9]) / std
    assert (deviation.abs() < 6).all()  # bounded by 6 standard deviations
    assert 0.5 < deviation.std().item() < 1.5  # the noise is there, at the configured scale
    assert torch.equal(p[:, 9:22], t[:, 9:22])  # rotation and last action are exact
    # In these random poses, the teacher's position error and velocity are the world-frame vectors rotated into the
    # body frame, Rᵀ v, and the rotation block is R row-major, with R from MuJoCo's own quaternion → matrix (known
    # poses are in test_point_ctrl_physics.py); the last action is the clipped action.
    rot = np.zeros((N, 9))
    for i, q in enumerate(env.sim.qpos[:, 3:7].double().numpy()):  # (after mj_step, xquat is the previous pose)
        mujoco.mju_quat2Mat(rot[i], q)
    rot = torch.as_tensor(rot).reshape(N, 3, 3)
    pos = env.sim.qpos[:, 0:3].double() - env.sim.env_origins.double()
    goal = env.debug_markers()["goal"].double()
    vel = env.sim.qvel[:, 0:3].double()
    assert (rot - rot.transpose(1, 2)).abs().amax(dim=(1, 2)).min() > 0.05  # R and Rᵀ differ in every env
    torch.testing.assert_close(t[:, 0:3].double(), (rot.transpose(1, 2) @ (goal - pos).unsqueeze(2)).squeeze(2),
                               atol=1e-5, rtol=0)
    torch.testing.assert_close(t[:, 3:6].double(), (rot.transpose(1, 2) @ vel.unsqueeze(2)).squeeze(2), atol=1e-5,
                               rtol=0)
    torch.testing.assert_close(t[:, 9:18].double(), rot.flatten(1), atol=1e-6, rtol=0)
    obs, *_ = env.step(torch.full((N, 4), 0.25))
    assert (obs["teacher"][:, 18:22] == 0.25).all()


# ----------------------------------------------------------------------------------------- thrust to weight
def measured_vertical_acceleration(env: PointCtrlEnv, action: torch.Tensor, settle_steps: int) -> torch.Tensor:
    """(N,) vertical acceleration over one policy step, m/s², after ``settle_steps`` policy steps of ``action``."""
    for _ in range(settle_steps):
        env.step(action)
    v0 = vertical_velocity(env).clone()
    env.step(action)
    return (vertical_velocity(env) - v0) / env.step_dt


def test_full_command_accelerates_upwards_at_thrust_to_weight_minus_one_g():
    env = make_point_ctrl_env(N, **NO_DR, **LEVEL_AT_REST, **NO_CRASH)
    tau = env.cfg.robot.motor_tau_s
    settle = math.ceil(10 * tau / env.step_dt) + 1  # > 10 motor time constants: the rotors are at full speed
    acc = measured_vertical_acceleration(env, torch.ones(N, 4), settle)
    expected = (2.25 - 1.0) * GRAVITY
    torch.testing.assert_close(acc, torch.full((N,), expected, dtype=torch.float64), rtol=0.01, atol=0)


def test_randomised_thrust_to_weight_is_each_envs_real_thrust_to_weight():
    env = make_point_ctrl_env(N, robot__mass_range_kg=(0.025, 0.030), robot__thrust_to_weight_range=(1.8, 2.6),
                              **NEW_FACTORS_OFF, **LEVEL_AT_REST, **NO_CRASH)
    teacher = env.get_observations()["teacher"]
    mass_ratio, t_w = teacher[:, 26].double(), teacher[:, 27].double()
    # The privileged observation carries each env's sampled parameters, within the configured ranges ...
    assert ((t_w >= 1.8) & (t_w <= 2.6)).all() and t_w.std() > 0.1
    assert ((mass_ratio >= 0.025 / 0.027 - 1e-6) & (mass_ratio <= 0.030 / 0.027 + 1e-6)).all()
    assert mass_ratio.std() > 0.01
    # ... and full command gives each env exactly its own (T/W - 1) g.
    settle = math.ceil(10 * env.cfg.robot.motor_tau_s / env.step_dt) + 1
    acc = measured_vertical_acceleration(env, torch.ones(N, 4), settle)
    torch.testing.assert_close(acc, (t_w - 1.0) * GRAVITY, rtol=0.01, atol=0)


def test_trim_command_hovers():
    """a = 2 / (T/W) - 1 on every motor commands exactly the weight; with the rotors at that speed, the drone holds
    its height: within 2 cm over 2 s."""
    env = make_point_ctrl_env(N, **NO_DR, **LEVEL_AT_REST, **NO_CRASH)
    trim = 2.0 / 2.25 - 1.0
    env._rotor_speed[:] = math.sqrt((trim + 1.0) / 2.0)  # rotors already at trim speed (see the spin-up test)
    z0 = height(env).clone()
    for _ in range(round(2.0 / env.step_dt)):
        env.step(torch.full((N, 4), trim))
        assert (height(env) - z0).abs().max() < 0.02
    assert vertical_velocity(env).abs().max() < 0.01


def test_rotor_spin_up_follows_the_first_order_motor_lag():
    """From a reset (rotors stopped) at the trim command, the drone sinks while the rotors spin up, then holds its
    vertical speed. The speed lost is the thrust deficit of the first-order lag: with α = 1 - exp(-dt/τ) per physics
    step, rotor speed fraction 1 - (1-α)^j and thrust ∝ speed², Δv = -g dt Σ_j [1 - (1 - (1-α)^j)²]."""
    env = make_point_ctrl_env(N, **NO_DR, **LEVEL_AT_REST, **NO_CRASH)
    trim = 2.0 / 2.25 - 1.0
    policy_steps = 25
    for _ in range(policy_steps):
        env.step(torch.full((N, 4), trim))
    dt, tau = env.physics_dt, env.cfg.robot.motor_tau_s
    r = math.exp(-dt / tau)
    j = torch.arange(1, policy_steps * env.cfg.decimation + 1, dtype=torch.float64)
    expected = -GRAVITY * dt * (1.0 - (1.0 - r**j) ** 2).sum().item()
    assert expected < -0.3  # a real effect: about g · 1.5 τ
    torch.testing.assert_close(vertical_velocity(env), torch.full((N,), expected, dtype=torch.float64), rtol=0.01,
                               atol=0)
    teacher = env.get_observations()["teacher"]
    torch.testing.assert_close(teacher[:, 22:26], torch.full((N, 4), math.sqrt(1 / 2.25)), atol=1e-4, rtol=0)


# --------------------------------------------------------------------------------------------- motor state
def test_rotor_speeds_and_last_action_reset_with_the_episode():
    env = make_point_ctrl_env(N, episode_length_s=0.2, **NO_CRASH)
    for _ in range(env.max_episode_length - 1):
        obs, *_ = env.step(torch.ones(N, 4))
    assert (obs["teacher"][:, 22:26] > 0.5).all() and (obs["teacher"][:, 18:22] == 1).all()
    obs, _, _, time_outs, _ = env.step(torch.ones(N, 4))
    assert time_outs.all()
    # The observation returned with the time-out is the first of the new episode: rotors stopped, no last action.
    assert (obs["teacher"][:, 22:26] == 0).all() and (obs["teacher"][:, 18:22] == 0).all()
    assert (obs["policy"][:, 18:22] == 0).all()


def test_reset_idx_stops_the_rotors_of_the_reset_envs_only():
    env = make_point_ctrl_env(N, **NO_CRASH)
    for _ in range(5):
        obs, *_ = env.step(torch.ones(N, 4))
    before = obs["teacher"].clone()
    ids = torch.tensor([0, 7, 8])
    others = torch.tensor([i for i in range(N) if i not in ids.tolist()])
    env._reset_idx(ids)
    env.sim.kinematics()
    after = env._get_observations()["teacher"]
    assert (after[ids, 22:26] == 0).all() and (after[ids, 18:22] == 0).all()
    assert torch.equal(after[others, 18:28], before[others, 18:28])


def test_the_task_runs_the_same_on_mujoco_c_and_mujoco_warp():
    """The task code on Warp's float32 tensors (the GPU path, here on Warp's CPU device) matches MuJoCo C's float64:
    same seed, same actions, 25 policy steps (0.5 s) from tilted, spinning starts; 1e-3 absolute on the exact
    `teacher` observation and on the accelerometer (MuJoCo's sensor on each backend, the same noise) covers float32
    rounding over 50 physics steps."""
    envs = [make_point_ctrl_env(4, seed=3, sim__backend=b) for b in ("mujoco", "mujoco_warp")]
    actions = torch.linspace(-0.3, 0.3, 16).reshape(4, 4)
    for _ in range(25):
        (obs_c, rew_c, *_), (obs_w, rew_w, *_) = (env.step(actions) for env in envs)
        torch.testing.assert_close(obs_w["teacher"], obs_c["teacher"], atol=1e-3, rtol=0)
        torch.testing.assert_close(obs_w["policy"][:, 22:], obs_c["policy"][:, 22:], atol=1e-3, rtol=0)  # accelerometer
        torch.testing.assert_close(rew_w, rew_c, atol=1e-4, rtol=0)
    assert not envs[0].reset_buf.any()  # the comparison ran over whole, uninterrupted flights
