"""Point control's issue-8 domain randomisation (latency, rotor τ, payload, motor strengths, gusts), the action-rate
reward and the chatter metrics of the evaluation, each checked against a hand computation."""

from __future__ import annotations

import math

import pytest
import torch

from foundation.envs import RslRlVecEnvWrapper
from foundation.rsl_rl.evaluation import evaluate
from foundation.tasks.point_ctrl.point_ctrl_env import GRAVITY, PointCtrlEnv
from foundation.utils.math import quat_from_euler_xyz
from tests.conftest import make_point_ctrl_env

N = 16
M0 = 0.027  # kg, the nominal mass (cf2x.urdf)
#: The factors added by issue 8, each disabled (both ends equal) or switched off.
NEW_FACTORS_OFF = dict(robot__payload_range_kg=(0.0, 0.0), robot__motor_strength_range=(1.0, 1.0),
                       robot__motor_tau_scale_range=(1.0, 1.0), robot__latency_steps_range=(0, 0),
                       gusts__rate_hz=0.0)
NOMINAL_AIRFRAME = dict(robot__mass_range_kg=(M0, M0), robot__thrust_to_weight_range=(2.25, 2.25))
LEVEL_AT_REST = dict(init__max_tilt_rad=0.0, init__max_lin_vel_mps=0.0, init__max_ang_vel_radps=0.0)
NO_CRASH = dict(min_height_m=-100.0, max_height_m=100.0)
# Teacher observation columns (see PointCtrlEnv's docstring).
MASS_RATIO, THRUST_TO_WEIGHT, LATENCY, TAU_RATIO, STRENGTHS, GUST = 26, 27, 32, 33, slice(34, 38), slice(38, 41)


def physics_step(env: PointCtrlEnv) -> None:
    """One physics step of the env's actuation and MuJoCo, without the policy-step bookkeeping."""
    env._apply_action()
    env.sim.step()


# -------------------------------------------------------------------------------------- everything disabled
def test_with_the_new_factors_disabled_the_dynamics_are_exactly_those_without_them():
    """The pre-issue-8 task, written out here: one draw of 14 uniforms per reset (goal, mass, thrust-to-weight,
    attitude, velocities), the rotor lag with the scalar α = 1 - exp(-dt/τ), thrust s² T/W m g / 4 per rotor, the
    force scaled by m₀/m. With the added factors disabled the env reproduces it bit for bit, and consumes the same
    random numbers (so the observation noise is the same too)."""
    seed = 5
    env = make_point_ctrl_env(N, seed=seed, **NEW_FACTORS_OFF)
    cfg = env.cfg
    rc, ic, gc = cfg.robot, cfg.init, cfg.goal
    gen = torch.Generator().manual_seed(seed)
    bounds = [gc.xy_range_m, gc.xy_range_m, gc.z_range_m, rc.mass_range_kg, rc.thrust_to_weight_range,
              (-ic.max_tilt_rad, ic.max_tilt_rad), (-ic.max_tilt_rad, ic.max_tilt_rad), (-math.pi, math.pi)]
    bounds += [(-ic.max_lin_vel_mps, ic.max_lin_vel_mps)] * 3 + [(-ic.max_ang_vel_radps, ic.max_ang_vel_radps)] * 3
    low = torch.tensor([b[0] for b in bounds])
    u = low + torch.tensor([b[1] - b[0] for b in bounds]) * torch.rand(N, 14, generator=gen)
    gen.manual_seed(seed)  # the env was reset twice (construction, then reset(seed))
    obs, _ = env.reset(seed)
    u = low + torch.tensor([b[1] - b[0] for b in bounds]) * torch.rand(N, 14, generator=gen)
    torch.randn(N, 9, generator=gen)  # the observation noise of the reset's observations
    assert torch.equal(env.generator.get_state(), gen.get_state())
    assert torch.equal(env._goal_pos, u[:, 0:3])
    assert torch.equal(env.sim.qpos[:, 3:7].float(), quat_from_euler_xyz(u[:, 5], u[:, 6], u[:, 7]))
    assert torch.equal(env.sim.qvel[:, :6].float(), u[:, 8:14])
    assert u[:, 3].std() > 0 and u[:, 4].std() > 0  # the old mass and thrust-to-weight randomisation is still on
    mass, t_w = u[:, 3:4], u[:, 4:5]
    thrust_max = t_w * mass * GRAVITY / 4.0
    alpha = 1.0 - math.exp(-cfg.sim.dt / rc.motor_tau_s)
    speed = torch.zeros(N, 4)
    actions = torch.rand(10, N, 4, generator=torch.Generator().manual_seed(1)) * 2 - 1
    for a in actions:
        env._pre_physics_step(a)
        for _ in range(cfg.decimation):
            speed.lerp_(torch.sqrt((a + 1.0) * 0.5), alpha)
            wrench = (speed.square() * thrust_max) @ env._thrust_to_wrench
            w, x, y, z = env.sim.qpos[:, 3:7].float().unbind(1)
            body_z = torch.stack([2 * (x * z + w * y), 2 * (y * z - w * x), 1 - 2 * (x * x + y * y)], dim=1)
            physics_step(env)
            assert torch.equal(env.sim.qfrc_applied[:, 0:3], (body_z * (wrench[:, :1] * (M0 / mass))).double())
            assert torch.equal(env.sim.qfrc_applied[:, 3:6], wrench[:, 1:].double())
    assert torch.equal(env._params, torch.cat([mass / M0, t_w], dim=1))


# ------------------------------------------------------------------------------------------------- latency
def test_latency_delays_the_applied_command_by_the_drawn_number_of_physics_steps():
    """From stopped rotors, a full command at physics step 0 reaches env i's motors at step L_i: its rotor speed is
    0 for L_i steps, then 1 - (1 - α)^(j - L_i + 1) (the first-order lag)."""
    env = make_point_ctrl_env(32, **{**NEW_FACTORS_OFF, "robot__latency_steps_range": (0, 3)}, **LEVEL_AT_REST,
                              **NO_CRASH)
    latency = env.get_observations()["teacher"][:, LATENCY]
    assert set(latency.tolist()) == {0.0, 1.0, 2.0, 3.0}  # every value of the range is drawn (32 envs)
    r = math.exp(-env.physics_dt / env.cfg.robot.motor_tau_s)
    for j in range(8):
        if j % env.cfg.decimation == 0:
            env._pre_physics_step(torch.ones(32, 4))
        physics_step(env)
        expected = torch.where(latency <= j, 1.0 - r ** (j - latency + 1), torch.zeros(32))
        torch.testing.assert_close(env._rotor_speed, expected[:, None].expand(32, 4), atol=1e-6, rtol=0)


def test_rotor_time_constant_is_drawn_per_episode_within_its_range():
    env = make_point_ctrl_env(32, **{**NEW_FACTORS_OFF, "robot__motor_tau_scale_range": (2 / 3, 2.0)},
                              **LEVEL_AT_REST, **NO_CRASH)
    tau = env.get_observations()["teacher"][:, TAU_RATIO].double() * env.cfg.robot.motor_tau_s
    assert (tau >= 0.02 - 1e-6).all() and (tau <= 0.06 + 1e-6).all() and tau.std() > 0.005
    env._pre_physics_step(torch.ones(32, 4))
    for _ in range(2):
        physics_step(env)
    expected = 1.0 - torch.exp(-2 * env.physics_dt / tau)
    torch.testing.assert_close(env._rotor_speed.double(), expected[:, None].expand(32, 4), atol=1e-6, rtol=0)


# ------------------------------------------------------------------------------------------------- payload
def test_a_payload_on_the_same_motors_lowers_the_measured_thrust_margin():
    """Full command accelerates the flying mass m_v + p with the vehicle's thrust T/W_v m_v g: a = (T/W - 1) g with
    T/W = T/W_v m_v / (m_v + p); at +10 g on the nominal 27 g, T/W 2.25 falls to 1.64."""
    from tests.tasks.test_point_ctrl import measured_vertical_acceleration

    env = make_point_ctrl_env(N, **{**NEW_FACTORS_OFF, "robot__payload_range_kg": (0.0, 0.01)},
                              **NOMINAL_AIRFRAME, **LEVEL_AT_REST, **NO_CRASH)
    teacher = env.get_observations()["teacher"].double()
    payload = (teacher[:, MASS_RATIO] - 1.0) * M0
    assert (payload >= -1e-8).all() and (payload <= 0.01 + 1e-8).all() and payload.std() > 1e-3
    t_w = 2.25 * M0 / (M0 + payload)
    torch.testing.assert_close(teacher[:, THRUST_TO_WEIGHT], t_w, atol=1e-6, rtol=0)
    settle = math.ceil(10 * env.cfg.robot.motor_tau_s / env.step_dt) + 1
    acc = measured_vertical_acceleration(env, torch.ones(N, 4), settle)
    torch.testing.assert_close(acc, (t_w - 1.0) * GRAVITY, rtol=0.01, atol=0)
    assert 2.25 * M0 / (M0 + 0.01) == pytest.approx(1.642, abs=1e-3)


def test_motor_strengths_scale_each_rotors_thrust():
    """With stopped rotors and a level start, one physics step of full command on motor i = env index mod 4 only:
    its thrust k_i T_max s², s = α (first-order lag from 0), i.e. a vertical acceleration of k_i (T/W g / 4) α² - g."""
    env = make_point_ctrl_env(N, **{**NEW_FACTORS_OFF, "robot__motor_strength_range": (0.9, 1.1)},
                              **NOMINAL_AIRFRAME, **LEVEL_AT_REST, **NO_CRASH)
    strengths = env.get_observations()["teacher"][:, STRENGTHS].double()
    assert ((strengths >= 0.9) & (strengths <= 1.1)).all() and strengths.std() > 0.02
    motor = torch.arange(N) % 4
    command = -torch.ones(N, 4)
    command[torch.arange(N), motor] = 1.0
    env._pre_physics_step(command)
    physics_step(env)
    alpha = 1.0 - math.exp(-env.physics_dt / env.cfg.robot.motor_tau_s)
    expected = strengths[torch.arange(N), motor] * 2.25 * GRAVITY / 4.0 * alpha**2 - GRAVITY
    torch.testing.assert_close(env.sim.qvel[:, 2] / env.physics_dt, expected, rtol=0, atol=1e-4)


# --------------------------------------------------------------------------------------------------- gusts
def test_gusts_apply_the_drawn_world_frame_force_to_the_flying_mass():
    """Rotors off, level start: a gust is the only horizontal force, so one policy step changes the velocity by
    F / m · step_dt, with m the flying mass (payload included) and F the drawn force, horizontal, of magnitude in
    force_range_mg · m₀ g, shown to the teacher as F / (m₀ g)."""
    env = make_point_ctrl_env(N, **{**NEW_FACTORS_OFF, "robot__payload_range_kg": (0.0, 0.01), "gusts__rate_hz": 1e6},
                              **LEVEL_AT_REST, **NO_CRASH, gusts__force_range_mg=(0.1, 0.3),
                              gusts__duration_range_s=(0.1, 0.1), noise__accel_mps2=0.0)
    mass = env.get_observations()["teacher"][:, MASS_RATIO].double() * M0
    obs, *_ = env.step(-torch.ones(N, 4))
    force = env._gust_force.double()
    assert torch.equal(force[:, 2], torch.zeros(N, dtype=torch.float64))
    magnitude = force.norm(dim=1) / (M0 * GRAVITY)
    assert ((magnitude > 0.1 - 1e-5) & (magnitude < 0.3 + 1e-5)).all() and magnitude.std() > 0.01
    torch.testing.assert_close(obs["teacher"][:, GUST].double(), force / (M0 * GRAVITY), atol=1e-6, rtol=0)
    torch.testing.assert_close(env.sim.qvel[:, :2], force[:, :2] / mass[:, None] * env.step_dt, rtol=1e-5, atol=1e-9)
    # The student's accelerometer feels the gust: F / m in the body frame (R from the observation, body → world).
    rot = obs["teacher"][:, 9:18].double().reshape(N, 3, 3)
    accel_b = (rot.transpose(1, 2) @ (force / mass[:, None]).unsqueeze(2)).squeeze(2)
    torch.testing.assert_close(obs["policy"][:, 22:25].double(), accel_b, rtol=1e-4, atol=1e-5)
    # The gust lasts its drawn duration (0.1 s = 5 policy steps), then (a new one may start at once) ends.
    for _ in range(4):
        env.step(-torch.ones(N, 4))
        assert torch.equal(env._gust_force.double(), force)


def test_no_gust_acts_when_off_or_in_the_quiet_end_of_an_episode():
    env = make_point_ctrl_env(N, **{**NEW_FACTORS_OFF, "gusts__rate_hz": 1e6}, **LEVEL_AT_REST, **NO_CRASH,
                              episode_length_s=1.0, gusts__quiet_end_s=0.4, gusts__duration_range_s=(0.04, 0.1))
    quiet_from = env.max_episode_length - round(0.4 / env.step_dt)
    for step in range(env.max_episode_length):
        env.step(-torch.ones(N, 4))
        acting = env._gust_force.norm(dim=1) > 0
        if step < quiet_from - 5:  # gusts of at most 5 steps follow each other without a gap ...
            assert acting.all()
        elif step >= quiet_from:  # ... and none acts in the quiet end
            assert not acting.any()
    off = make_point_ctrl_env(N, **NEW_FACTORS_OFF, **LEVEL_AT_REST, **NO_CRASH)
    for _ in range(20):
        obs, *_ = off.step(-torch.ones(N, 4))
    assert (off.sim.qvel[:, :2] == 0).all() and (obs["teacher"][:, GUST] == 0).all()


# ------------------------------------------------------------------------------------ action rate, chatter
def test_action_rate_reward_is_weight_times_squared_action_change_times_step_dt():
    zero = dict(rewards__distance_coarse=0.0, rewards__distance_fine=0.0, rewards__lin_vel=0.0,
                rewards__ang_vel=0.0, rewards__crash=0.0, rewards__action_rate=-0.7)
    env = make_point_ctrl_env(4, **zero, **NO_CRASH)
    a1, a2 = torch.full((4, 4), 0.5), torch.tensor([[0.5, 0.2, -0.5, 1.0]]).expand(4, 4)
    _, reward, *_ = env.step(a1)
    torch.testing.assert_close(reward, torch.full((4,), -0.7 * 4 * 0.25 * env.step_dt))  # from a_{-1} = 0
    _, reward, *_ = env.step(a2)
    torch.testing.assert_close(reward, torch.full((4,), -0.7 * (0.09 + 1.0 + 0.25) * env.step_dt))


class _Alternating(torch.nn.Module):
    """A policy that commands +1.5 (clipped to 1) and -1 on every motor in turn: |Δa| = 2 per step."""

    def __init__(self) -> None:
        super().__init__()
        self.sign = 1.0

    def reset(self, dones=None) -> None:
        pass

    def forward(self, obs):
        self.sign = -self.sign
        return torch.full((obs["policy"].shape[0], 4), 1.25 + 0.25 * self.sign).mul(self.sign)


def test_evaluation_reports_chatter():
    env = RslRlVecEnvWrapper(make_point_ctrl_env(4, episode_length_s=0.2, **NO_CRASH))
    result = evaluate(_Alternating(), env, seed=0)
    assert result.action_rate == pytest.approx(2.0) and result.at_limit_fraction == 1.0
    assert "mean |Δa| 2.000" in str(result)


def test_accelerometer_noise_has_its_configured_scale_and_leaves_every_other_draw_as_it_was():
    """Noise of 0.1 m/s² per axis, from the env's second generator: with it on or off, the teacher's observations,
    the dynamics and the other sensors' noise are bit-identical, so adding the sensor kept the teacher's training
    as it was; ``reset(seed)`` repeats the accelerometer's noise too."""
    noisy, clean = (make_point_ctrl_env(N, seed=3, noise__accel_mps2=std) for std in (0.1, 0.0))
    actions = torch.rand(20, N, 4, generator=torch.Generator().manual_seed(0)) * 2 - 1
    for a in actions:
        obs_noisy, *_ = noisy.step(a)
        obs_clean, *_ = clean.step(a)
        assert torch.equal(obs_noisy["teacher"], obs_clean["teacher"])
        assert torch.equal(obs_noisy["policy"][:, :22], obs_clean["policy"][:, :22])
    deviation = obs_noisy["policy"][:, 22:25] - obs_clean["policy"][:, 22:25]
    assert 0.07 < deviation.std().item() < 0.13
    first = noisy.reset(seed=5)[0]["policy"][:, 22:25]
    again = noisy.reset(seed=5)[0]["policy"][:, 22:25]
    assert torch.equal(first, again) and first.abs().max() > 0  # only noise: the rotors are stopped at a start
    # A step in which nothing else is random (no gusts, no resets) draws from the env's generator exactly the 9
    # noise columns per env of position, velocity and gyro, as before the accelerometer existed.
    env = make_point_ctrl_env(N, seed=3, **NEW_FACTORS_OFF, **NO_CRASH)
    env.step(torch.zeros(N, 4))
    replay = torch.Generator().manual_seed(0)
    replay.set_state(env.generator.get_state())
    env.step(torch.zeros(N, 4))
    torch.randn(N, 9, generator=replay)
    assert torch.equal(env.generator.get_state(), replay.get_state())


def test_invalid_randomisation_ranges_are_rejected_by_name():
    for key, value in (("robot__latency_steps_range", (2, 1)), ("robot__payload_range_kg", (-0.01, 0.0)),
                       ("robot__motor_tau_scale_range", (0.0, 1.0)), ("gusts__force_range_mg", (0.3, 0.1))):
        with pytest.raises(ValueError, match=key.replace("__", ".")):
            make_point_ctrl_env(2, **{key: value})
    with pytest.raises(ValueError) as info:  # every bad range at once, each with what is valid
        make_point_ctrl_env(2, robot__latency_steps_range=(0.5, 2), robot__mass_range_kg=(0.0, 0.03),
                            gusts__rate_hz=-1.0)
    assert info.value.lines == ["env.robot.mass_range_kg=(0.0, 0.03): must be (low, high) with 0.0 < low <= high",
                                "env.robot.latency_steps_range=(0.5, 2): must be a (low, high) pair of integers",
                                "env.gusts.rate_hz=-1.0: must be >= 0.0"]
