"""Point control against first principles: mixer signs, thrust direction, observation frames, rewards and success.

Every expected value is computed here by hand from the source's conventions, never with the env's own helpers:

* gym-pybullet-drones ``cf2x.urdf`` (MIT): rotors 0..3 = motors M1..M4 at (+x,-y), (-x,-y), (-x,+y), (+x,+y) with
  0.028 m per axis (``prop0_link..prop3_link``), mass 0.027 kg, inertia diag(1.4e-5, 1.4e-5, 2.17e-5) kg m²,
  kf = 3.16e-10, km = 7.94e-12, thrust-to-weight 2.25; yaw torque on the body
  τ_z = km(-ω0² + ω1² - ω2² + ω3²) (``BaseAviary._dynamics``), i.e. -(km/kf) f_i for M1 and M3, + for M2 and M4.
* Rigid-body mechanics: each rotor pushes along the body's +z at its position r_i, so the body torque is
  Σ r_i × (0, 0, f_i) + τ_z ẑ and the world force R (0, 0, Σ f_i); a body at rest accelerates at a = F/m - g ẑ and
  α = I⁻¹ τ (no gyroscopic term at ω = 0). MuJoCo's semi-implicit Euler step then gives v₁ = a dt, ω₁ = α dt
  (body frame: a free joint's angular velocity is in local coordinates), p₁ = p₀ + v₁ dt.

The airframe randomisation is pinned to nominal and the added actuation factors (latency, rotor-lag spread, payload,
motor strengths, gusts) are disabled through the config, the rotor lag is made instantaneous
(``motor_tau_s`` → 0) and one policy step is one physics step (``decimation=1``), so a single ``env.step`` from a
state written with ``sim.write_state`` is exactly one rigid-body step with known forces.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tests.conftest import make_point_ctrl_env
from tests.tasks.test_point_ctrl_randomization import NEW_FACTORS_OFF

# --------------------------------------------------------------------------------------------- the source's numbers
MASS_KG = 0.027
INERTIA = np.array([1.4e-5, 1.4e-5, 2.17e-5])  # kg m², cf2x.urdf base_link
GRAVITY = 9.81  # m/s², cf2x.xml <option gravity>
THRUST_TO_WEIGHT = 2.25
KM_OVER_KF = 7.94e-12 / 3.16e-10  # m
ROTOR_XY = np.array([[0.028, -0.028], [-0.028, -0.028], [-0.028, 0.028], [0.028, 0.028]])  # M1..M4, body frame
YAW_SIGN = np.array([-1.0, 1.0, -1.0, 1.0])  # τ_z = km(-ω0² + ω1² - ω2² + ω3²)
DT = 0.01  # s, the task's sim dt

#: Nominal airframe without latency, payload, motor-strength spread, rotor-lag spread or gusts, instantaneous
#: rotors, one physics step per env step, no crash termination, env origins apart.
EXACT = dict(robot__mass_range_kg=(MASS_KG, MASS_KG), robot__thrust_to_weight_range=(THRUST_TO_WEIGHT,) * 2,
             robot__motor_tau_s=1e-9, decimation=1, min_height_m=-100.0, max_height_m=100.0,
             scene__env_spacing=3.0, **NEW_FACTORS_OFF)


def quat_axis_angle(axis, angle_rad: float) -> np.ndarray:
    """Unit quaternion (w, x, y, z) of a rotation by ``angle_rad`` about ``axis`` (any length)."""
    axis = np.asarray(axis, dtype=float) / np.linalg.norm(axis)
    return np.concatenate([[math.cos(angle_rad / 2)], math.sin(angle_rad / 2) * axis])


def rotmat_axis_angle(axis, angle_rad: float) -> np.ndarray:
    """Rodrigues' formula: body → world rotation matrix of the same rotation."""
    k = np.asarray(axis, dtype=float) / np.linalg.norm(axis)
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + math.sin(angle_rad) * kx + (1 - math.cos(angle_rad)) * kx @ kx


def write_states(env, pos_env, quat, lin_vel_w=None, ang_vel_b=None) -> None:
    """Put every env at env-frame position ``pos_env`` (N, 3) with orientation ``quat`` (N, 4) wxyz and the given
    world-frame linear and body-frame angular velocities (zero when None)."""
    n = env.num_envs
    qpos = torch.zeros(n, 7, dtype=torch.float64)
    qpos[:, :3] = torch.as_tensor(pos_env, dtype=torch.float64) + env.sim.env_origins.double()
    qpos[:, 3:] = torch.as_tensor(quat, dtype=torch.float64)
    qvel = torch.zeros(n, 6, dtype=torch.float64)
    if lin_vel_w is not None:
        qvel[:, :3] = torch.as_tensor(lin_vel_w, dtype=torch.float64)
    if ang_vel_b is not None:
        qvel[:, 3:] = torch.as_tensor(ang_vel_b, dtype=torch.float64)
    env.sim.write_state(torch.arange(n), qpos.to(env.sim.qpos), qvel.to(env.sim.qvel))
    env.sim.kinematics()


def rotor_thrusts(actions: np.ndarray) -> np.ndarray:
    """(N, 4) rotor thrusts, N, of settled rotors: command fraction (a + 1) / 2 of T/W · m g / 4 each."""
    return (actions + 1.0) / 2.0 * THRUST_TO_WEIGHT * MASS_KG * GRAVITY / 4.0


def body_torque(f: np.ndarray) -> np.ndarray:
    """(N, 3) body-frame torque, N m: Σ r_i × (0, 0, f_i) + Σ yaw_sign_i (km/kf) f_i ẑ."""
    x, y = ROTOR_XY[:, 0], ROTOR_XY[:, 1]
    return np.stack([f @ y, -(f @ x), f @ (YAW_SIGN * KM_OVER_KF)], axis=1)


def one_step(env, actions: np.ndarray):
    """Step once with ``actions`` (N, 4); returns (linear acceleration world (N, 3), angular acceleration body
    (N, 3)) measured from MuJoCo's velocities, and the step's outputs."""
    v0 = env.sim.qvel[:, :6].double().clone()
    out = env.step(torch.as_tensor(actions, dtype=torch.float32))
    assert not out[2].any() and not out[3].any()  # nothing terminated: the state is the stepped one
    dv = (env.sim.qvel[:, :6].double() - v0).numpy() / DT
    return dv[:, :3], dv[:, 3:], out


# ------------------------------------------------------------------------------------------------------ the model
def test_the_mjcf_matches_the_source_airframe():
    """Rotor sites, mass and inertia of cf2x.xml are cf2x.urdf's (the hand computations below rely on them)."""
    env = make_point_ctrl_env(1, **EXACT)
    model = env.sim.model
    body = model.body("cf2x")
    assert body.mass[0] == pytest.approx(MASS_KG) and np.allclose(body.inertia, INERTIA)
    assert np.allclose(body.ipos, 0.0) and np.allclose(body.iquat, [1, 0, 0, 0])
    sites = np.array([model.site(f"rotor{i}").pos for i in range(4)])
    np.testing.assert_allclose(sites[:, :2], ROTOR_XY)
    np.testing.assert_allclose(sites[:, 2], 0.0)
    assert model.opt.gravity[2] == pytest.approx(-GRAVITY) and model.opt.timestep == pytest.approx(DT)


# ---------------------------------------------------------------------------------------------- forces, torques
#: Named differential commands around the hover command; which way each must turn the body, in the body frame.
HOVER = 2.0 / THRUST_TO_WEIGHT - 1.0
D = 0.3
DIFFERENTIAL = {  # rotor order M1 (front right), M2 (back right), M3 (back left), M4 (front left)
    "roll_right_side_up": ([+D, +D, -D, -D], (-1, 0, 0)),  # right rotors push more: roll about -x
    "roll_left_side_up": ([-D, -D, +D, +D], (+1, 0, 0)),
    "nose_up": ([+D, -D, -D, +D], (0, -1, 0)),  # front rotors push more: pitch about -y (x forward, y left)
    "nose_down": ([-D, +D, +D, -D], (0, +1, 0)),
    "yaw_ccw": ([-D, +D, -D, +D], (0, 0, +1)),  # M2, M4 (CW rotors) faster: the body turns CCW seen from above
    "yaw_cw": ([+D, -D, +D, -D], (0, 0, -1)),
}


@pytest.mark.parametrize("name", list(DIFFERENTIAL))
def test_differential_commands_turn_the_body_the_way_the_source_does(name):
    """Each named command, from rest and level, gives an angular acceleration about the expected body axis only,
    of the magnitude Σ r_i × f_i (roll, pitch) or (km/kf) Σ ±f_i (yaw) over the inertia."""
    delta, direction = DIFFERENTIAL[name]
    env = make_point_ctrl_env(1, **EXACT)
    write_states(env, [[0.0, 0.0, 1.0]], [[1.0, 0.0, 0.0, 0.0]])
    actions = HOVER + np.array([delta])
    _, alpha, _ = one_step(env, actions)
    f = rotor_thrusts(actions)[0]
    d_f = f - rotor_thrusts(np.full((1, 4), HOVER))[0]  # the differential part (the hover part cancels)
    magnitude = {0: 0.028 * abs(d_f).sum(), 1: 0.028 * abs(d_f).sum(), 2: KM_OVER_KF * abs(d_f).sum()}
    axis = int(np.flatnonzero(direction)[0])
    expected = np.zeros(3)
    expected[axis] = direction[axis] * magnitude[axis] / INERTIA[axis]
    np.testing.assert_allclose(alpha[0], expected, rtol=1e-4, atol=1e-6 * abs(expected).max())
    assert abs(alpha[0, axis]) > 1.0  # rad/s²: a real effect, not rounding


def test_wrench_of_an_arbitrary_command_on_a_tilted_body():
    """Four bodies at rest in different tilted poses, each with a different asymmetric command: the world-frame
    linear acceleration is R (0, 0, Σf) / m - g ẑ and the body-frame angular acceleration I⁻¹ τ; the transposed
    rotation (world → body instead of body → world) gives a different answer for every pose."""
    poses = [((1.0, 2.0, 3.0), math.radians(50)), ((0.0, 0.0, 1.0), math.radians(90)),
             ((1.0, 0.0, 0.0), math.radians(30)), ((-2.0, 1.0, 0.5), math.radians(120))]
    actions = np.array([[0.6, -0.2, 0.1, -0.5], [-0.1, 0.4, 0.9, 0.2], [1.0, -1.0, 0.3, 0.0], [0.2, 0.2, -0.6, 0.7]])
    env = make_point_ctrl_env(len(poses), **EXACT)
    write_states(env, np.tile([0.0, 0.0, 1.0], (len(poses), 1)), np.stack([quat_axis_angle(*p) for p in poses]))
    acc, alpha, _ = one_step(env, actions)
    f = rotor_thrusts(actions)
    for i, pose in enumerate(poses):
        rot = rotmat_axis_angle(*pose)
        expected_acc = rot @ np.array([0.0, 0.0, f[i].sum()]) / MASS_KG - np.array([0.0, 0.0, GRAVITY])
        np.testing.assert_allclose(acc[i], expected_acc, rtol=1e-4, atol=1e-4)
        if i != 1:  # (a pure yaw leaves the thrust axis vertical either way)
            wrong = rot.T @ np.array([0.0, 0.0, f[i].sum()]) / MASS_KG - np.array([0.0, 0.0, GRAVITY])
            assert np.abs(wrong - expected_acc).max() > 1.0
    np.testing.assert_allclose(alpha, body_torque(f) / INERTIA, rtol=1e-4, atol=1e-3)
    assert (np.abs(body_torque(f)) > 1e-6).all()  # every torque component is exercised


def test_the_accelerometer_reads_the_specific_force_in_the_body_frame():
    """The ``policy`` group's last 3 entries (noise off): 0 when an episode starts (rotors stopped, also after an
    episode with thrust), then what an IMU at the centre of mass measures, the acceleration minus gravity in the
    body frame: Rᵀ (a + g ẑ), which for thrust alone is (0, 0, Σf / m) in every pose; 0 in free fall (rotors off)."""
    poses = [((1.0, 2.0, 3.0), math.radians(50)), ((0.0, 0.0, 1.0), math.radians(90)),
             ((1.0, 0.0, 0.0), math.radians(30)), ((-2.0, 1.0, 0.5), math.radians(120))]
    actions = np.array([[0.6, -0.2, 0.1, -0.5], [-0.1, 0.4, 0.9, 0.2], [1.0, -1.0, 0.3, 0.0], [-1.0] * 4])
    env = make_point_ctrl_env(len(poses), noise__accel_mps2=0.0, **EXACT)
    obs, _ = env.reset()
    assert obs["policy"].shape == (len(poses), 25) and (obs["policy"][:, 22:25] == 0).all()
    write_states(env, np.tile([0.0, 0.0, 1.0], (len(poses), 1)), np.stack([quat_axis_angle(*p) for p in poses]))
    acc, _, (obs, *_) = one_step(env, actions)
    accel = obs["policy"][:, 22:25].double().numpy()
    f = rotor_thrusts(actions)
    for i, pose in enumerate(poses):
        rot = rotmat_axis_angle(*pose)
        np.testing.assert_allclose(accel[i], [0.0, 0.0, f[i].sum() / MASS_KG], rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(accel[i], rot.T @ (acc[i] + [0.0, 0.0, GRAVITY]), rtol=1e-4, atol=1e-4)
    assert accel[3, 2] == pytest.approx(0.0, abs=1e-6) and accel[0, 2] > 1.0  # free fall vs thrust
    obs, _ = env.reset()  # a new episode: rotors stopped, not the last episode's reading
    assert (obs["policy"][:, 22:25] == 0).all()


def test_full_thrust_of_a_level_body_is_thrust_to_weight_times_weight():
    env = make_point_ctrl_env(2, **EXACT)
    write_states(env, [[0.0, 0.0, 1.0]] * 2, [[1.0, 0.0, 0.0, 0.0]] * 2)
    acc, alpha, _ = one_step(env, np.stack([np.ones(4), -np.ones(4)]))
    np.testing.assert_allclose(acc[0], [0.0, 0.0, (THRUST_TO_WEIGHT - 1.0) * GRAVITY], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(acc[1], [0.0, 0.0, -GRAVITY], rtol=1e-6, atol=1e-6)  # motors off: free fall
    np.testing.assert_allclose(alpha, 0.0, atol=1e-6)


def test_a_heavier_randomised_airframe_accelerates_less_for_the_same_thrust():
    """Mass randomisation (payload at the centre of mass): with thrust-to-weight fixed, full thrust still gives
    (T/W - 1) g, whatever the mass; the torque, fixed by the same rotor thrust and the unchanged inertia, scales
    with the mass (T_max = T/W · m g / 4)."""
    masses = (0.025, 0.030)
    accs, alphas = [], []
    for m in masses:
        env = make_point_ctrl_env(1, **{**EXACT, "robot__mass_range_kg": (m, m)})
        write_states(env, [[0.0, 0.0, 1.0]], [[1.0, 0.0, 0.0, 0.0]])
        acc, alpha, _ = one_step(env, np.array([[1.0, 1.0, -1.0, -1.0]]))
        accs.append(acc[0])
        alphas.append(alpha[0])
    for m, acc, alpha in zip(masses, accs, alphas):
        f = np.array([1.0, 1.0, 0.0, 0.0]) * THRUST_TO_WEIGHT * m * GRAVITY / 4.0
        np.testing.assert_allclose(acc, [0.0, 0.0, f.sum() / m - GRAVITY], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(alpha, body_torque(f[None])[0] / INERTIA, rtol=1e-4, atol=1e-3)


# -------------------------------------------------------------------------------------------------- observations
def test_observations_in_a_known_pose_are_in_the_body_frame():
    """Yaw 90° (body x = world +y, body y = world -x): a goal 1 m along world +x is 1 m along body -y; a world
    velocity along +y is along body +x; body rates pass through unrotated; the rotation block is R row-major.
    A second env, tilted about an oblique axis, is checked against Rodrigues' R: Rᵀ (goal - p)."""
    env = make_point_ctrl_env(2, **EXACT)
    oblique = ((1.0, -2.0, 0.5), math.radians(70))
    quats = np.stack([quat_axis_angle((0, 0, 1), math.pi / 2), quat_axis_angle(*oblique)])
    pos = np.array([[0.0, 0.0, 1.0], [0.3, -0.2, 0.8]])
    goal = np.array([[1.0, 0.0, 1.0], [-0.5, 1.1, 1.4]])
    lin_vel_w = np.array([[0.0, 0.5, 0.0], [0.2, -0.3, 0.4]])
    ang_vel_b = np.array([[0.1, -0.2, 0.3], [-0.4, 0.25, 0.15]])
    write_states(env, pos, quats, lin_vel_w, ang_vel_b)
    env.set_goal(torch.arange(2), torch.as_tensor(goal, dtype=torch.float32))
    teacher = env._get_observations()["teacher"].double().numpy()

    np.testing.assert_allclose(teacher[0, 0:3], [0.0, -1.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(teacher[0, 3:6], [0.5, 0.0, 0.0], atol=1e-6)
    rot0 = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(teacher[0, 9:18], rot0.reshape(-1), atol=1e-6)

    rot1 = rotmat_axis_angle(*oblique)
    np.testing.assert_allclose(teacher[1, 0:3], rot1.T @ (goal[1] - pos[1]), atol=1e-6)
    np.testing.assert_allclose(teacher[1, 3:6], rot1.T @ lin_vel_w[1], atol=1e-6)
    np.testing.assert_allclose(teacher[1, 9:18], rot1.reshape(-1), atol=1e-6)
    assert np.abs(rot1 @ (goal[1] - pos[1]) - rot1.T @ (goal[1] - pos[1])).max() > 0.1  # R and Rᵀ differ here
    np.testing.assert_allclose(teacher[:, 6:9], ang_vel_b, atol=1e-6)


# ------------------------------------------------------------------------------------------------------- rewards
#: RewardCfg's weights and length scales, written out (README: "Reward per policy step").
REWARD = dict(coarse=15.0, coarse_scale=0.8, fine=10.0, fine_scale=0.1, lin_vel=-0.05, ang_vel=-0.05,
              action_rate=-0.5, crash=-10.0)


def expected_reward(d, v, w, delta_a, crashed, step_dt: float = DT) -> np.ndarray:
    """The reward per policy step: step_dt · (15(1-tanh(d/0.8)) + 10(1-tanh(d/0.1)) - 0.05|v|² - 0.05|ω|²
    - 0.5|a_t - a_{t-1}|²), -10 on a crash. ``delta_a`` (N, 4) is the action change a_t - a_{t-1}."""
    r = REWARD
    shaped = (r["coarse"] * (1 - np.tanh(d / r["coarse_scale"])) + r["fine"] * (1 - np.tanh(d / r["fine_scale"]))
              + r["lin_vel"] * (v ** 2).sum(1) + r["ang_vel"] * (w ** 2).sum(1)
              + r["action_rate"] * (delta_a ** 2).sum(1))
    return shaped * step_dt + r["crash"] * crashed


def test_rewards_match_the_hand_computed_terms():
    """Motors off (action -1): each body falls freely for one step, so its state after the step is known by hand
    (v₁ = v₀ - g dt ẑ, p₁ = p₀ + v₁ dt; body rates about one principal axis stay constant). Goal distances span the
    fine (0.1 m) and coarse (0.8 m) length scales; one env starts under the crash height. The first action of an
    episode changes the command from a_{-1} = 0 to -1 on each rotor: |Δa|² = 4."""
    env = make_point_ctrl_env(6, **{**EXACT, "min_height_m": 0.1, "max_height_m": 2.0})
    pos = np.array([[0.0, 0.0, 1.0], [0.1, 0.0, 1.0], [0.0, 0.2, 1.0], [0.0, 0.0, 1.0], [0.3, 0.4, 1.2],
                    [0.0, 0.0, 0.05]])
    offsets = np.array([[0.0, 0.0, 0.02], [0.05, 0.0, 0.0], [0.0, -0.3, 0.0], [0.6, 0.0, 0.0], [1.0, 1.5, 0.2],
                        [0.0, 0.0, 0.03]])
    lin_vel = np.array([[0.0, 0.0, 0.0], [0.3, 0.0, 0.0], [0.0, -0.4, 0.1], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0],
                        [0.0, 0.0, 0.0]])
    ang_vel = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 1.5], [2.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, -1.0, 0.0],
                        [0.0, 0.0, 0.0]])
    write_states(env, pos, np.tile([1.0, 0.0, 0.0, 0.0], (6, 1)), lin_vel, ang_vel)
    env.set_goal(torch.arange(6), torch.as_tensor(pos + offsets, dtype=torch.float32))
    _, reward, terminated, _, _ = env.step(-torch.ones(6, 4))
    v1 = lin_vel - np.array([0.0, 0.0, GRAVITY * DT])
    p1 = pos + v1 * DT
    d = np.linalg.norm(pos + offsets - p1, axis=1)
    crashed = p1[:, 2] < 0.1
    assert crashed.tolist() == [False] * 5 + [True] and terminated.tolist() == crashed.tolist()
    assert d.min() < 0.05 and d.max() > 1.5
    np.testing.assert_allclose(reward.double().numpy(), expected_reward(d, v1, ang_vel, -np.ones((6, 4)), crashed),
                               rtol=1e-5, atol=1e-6)


def test_rewards_are_scaled_by_the_policy_step():
    """With decimation 2 (the default) every shaped term is multiplied by step_dt = 0.02 s, the crash term is not."""
    cfg = {**EXACT, "decimation": 2}
    env = make_point_ctrl_env(2, **cfg)
    write_states(env, [[0.0, 0.0, 1.0]] * 2, [[1.0, 0.0, 0.0, 0.0]] * 2)
    env.set_goal(torch.arange(2), torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 1.5]]))
    _, reward, *_ = env.step(-torch.ones(2, 4))
    # Two Euler steps of free fall: v₂ = -2 g dt, p₂ = p₀ - 3 g dt².
    v = np.array([[0.0, 0.0, -2 * GRAVITY * DT]] * 2)
    p = np.array([[0.0, 0.0, 1.0 - 3 * GRAVITY * DT**2]] * 2)
    d = np.linalg.norm(np.array([[0.0, 0.0, 1.0], [0.0, 0.0, 1.5]]) - p, axis=1)
    np.testing.assert_allclose(reward.double().numpy(),
                               expected_reward(d, v, np.zeros((2, 3)), -np.ones((2, 4)), np.zeros(2), step_dt=2 * DT),
                               rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------------------------------- success
def test_success_is_within_0_1_m_at_the_end_and_not_crashed():
    """One-step episodes (motors off, known free fall): success exactly for the survivors that end within 0.1 m of
    the goal; a crash near its goal is no success; final_distance is the distance at the end of the episode."""
    n = 7
    env = make_point_ctrl_env(n, **{**EXACT, "min_height_m": 0.1, "max_height_m": 2.0, "episode_length_s": DT})
    assert env.max_episode_length == 1
    pos = np.tile([0.0, 0.0, 1.0], (n, 1))
    pos[6, 2] = 0.05  # will crash
    p1 = pos - np.array([0.0, 0.0, GRAVITY * DT * DT])
    distance = np.array([0.0, 0.05, 0.095, 0.105, 0.3, 0.95, 0.02])
    direction = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.6, 0.8, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0],
                          [0.0, -1.0, 0.0], [1.0, 0.0, 0.0]])
    write_states(env, pos, np.tile([1.0, 0.0, 0.0, 0.0], (n, 1)))
    env.set_goal(torch.arange(n), torch.as_tensor(p1 + distance[:, None] * direction, dtype=torch.float32))
    _, _, terminated, time_outs, extras = env.step(-torch.ones(n, 4))
    assert (terminated | time_outs).all()
    outcomes = extras["episode_outcomes"]
    assert outcomes["env_ids"].tolist() == list(range(n))
    np.testing.assert_allclose(outcomes["final_distance"].double().numpy(), distance, atol=2e-6)
    assert outcomes["success"].tolist() == [True, True, True, False, False, False, False]
    assert outcomes["crash"].tolist() == [False] * 6 + [True]
    assert extras["log"]["Episode_Metric/success"] == pytest.approx(3 / 7)
    assert extras["log"]["Episode_Metric/crash"] == pytest.approx(1 / 7)
    assert extras["log"]["Episode_Metric/final_distance"] == pytest.approx(distance[:6].mean(), abs=1e-6)


# ------------------------------------------------------------------------------------------------ initial states
def test_episodes_start_from_the_configured_ranges():
    """256 resets: start at (0, 0, 1) m, roll and pitch (Isaac Lab's extrinsic x-y-z Euler angles, R = Rz Ry Rx)
    within ±30°, yaw over ±180°, velocity within ±0.2 m/s, body rates within ±0.5 rad/s, goal x, y within ±2 m and z
    within [0.5, 1.5] m, each spread over its range (both signs seen)."""
    import mujoco

    n = 256
    env = make_point_ctrl_env(n, **EXACT)
    qpos = env.sim.qpos[:, :7].double().numpy()
    qvel = env.sim.qvel[:, :6].double().numpy()
    np.testing.assert_allclose(qpos[:, :3] - env.sim.env_origins.double().numpy(), np.tile([0, 0, 1.0], (n, 1)),
                               atol=1e-9)
    rot = np.zeros((n, 9))
    for i in range(n):
        mujoco.mju_quat2Mat(rot[i], qpos[i, 3:7])
    rot = rot.reshape(n, 3, 3)
    roll = np.degrees(np.arctan2(rot[:, 2, 1], rot[:, 2, 2]))
    pitch = np.degrees(-np.arcsin(rot[:, 2, 0]))
    yaw = np.degrees(np.arctan2(rot[:, 1, 0], rot[:, 0, 0]))
    goal = env.debug_markers()["goal"].double().numpy()

    def spread(x, low, high):
        assert x.min() >= low - 1e-6 and x.max() <= high + 1e-6
        assert x.min() < low + 0.2 * (high - low) and x.max() > high - 0.2 * (high - low)

    for angle in (roll, pitch):
        spread(angle, -30.0, 30.0)
    spread(yaw, -180.0, 180.0)
    for k in range(3):
        spread(qvel[:, k], -0.2, 0.2)
        spread(qvel[:, 3 + k], -0.5, 0.5)
    spread(goal[:, 0], -2.0, 2.0)
    spread(goal[:, 1], -2.0, 2.0)
    spread(goal[:, 2], 0.5, 1.5)


def test_episode_reward_logs_are_the_episode_sums_per_second():
    """One-step episodes: each ``Episode_Reward/<term>`` is the mean over the finished envs of that term's reward in
    the episode, divided by the episode length in seconds; together they add up to the mean step reward."""
    env = make_point_ctrl_env(8, seed=4, **{**EXACT, "episode_length_s": DT})
    _, reward, _, time_outs, extras = env.step(torch.zeros(8, 4))
    assert time_outs.all()
    log = extras["log"]
    names = ["distance_coarse", "distance_fine", "lin_vel", "ang_vel", "action_rate", "crash"]
    assert {f"Episode_Reward/{k}" for k in names} <= set(log)
    total = sum(log[f"Episode_Reward/{k}"] for k in names) * DT
    assert total == pytest.approx(reward.mean().item(), rel=1e-5)
    assert log["Episode_Reward/distance_coarse"] > 0 and log["Episode_Reward/lin_vel"] < 0
    assert log["Episode_Reward/crash"] == 0.0


# ------------------------------------------------------------------------------------------- noise, bad configs
def test_sensor_noise_of_each_policy_channel_has_its_configured_scale():
    """policy - teacher on the first 9 entries: position 1 cm, velocity 5 cm/s, gyro 0.02 rad/s, per channel."""
    env = make_point_ctrl_env(512, **EXACT)
    obs = env._get_observations()
    deviation = (obs["policy"][:, :9] - obs["teacher"][:, :9]).double()
    expected = torch.tensor([0.01] * 3 + [0.05] * 3 + [0.02] * 3, dtype=torch.float64)
    ratio = deviation.std(dim=0) / expected
    assert ((ratio > 0.85) & (ratio < 1.15)).all(), ratio
    assert (deviation.mean(dim=0).abs() < 0.2 * expected).all()


def test_configs_the_task_cannot_run_are_refused():
    with pytest.raises(ValueError, match="25-D 'policy' observation and 4 actions"):
        make_point_ctrl_env(1, observation_space=28)
    with pytest.raises(ValueError, match="MJCF mass 0.027 kg .* differs from robot.mass_kg=0.03"):
        make_point_ctrl_env(1, robot__mass_kg=0.03)


def test_out_of_range_commands_are_clipped_by_the_task_itself():
    """Unwrapped (no rsl-rl wrapper clipping), commands beyond ±1 act as ±1: full thrust, or rotors off."""
    env = make_point_ctrl_env(2, **EXACT)
    write_states(env, [[0.0, 0.0, 1.0]] * 2, [[1.0, 0.0, 0.0, 0.0]] * 2)
    acc, _, (obs, *_) = one_step(env, np.array([[5.0] * 4, [-5.0] * 4]))
    np.testing.assert_allclose(acc[:, 2], [(THRUST_TO_WEIGHT - 1.0) * GRAVITY, -GRAVITY], rtol=1e-5)
    assert obs["teacher"][:, 18:22].tolist() == [[1.0] * 4, [-1.0] * 4]


def test_episode_reward_logs_sum_over_the_whole_episode():
    """Three-step episodes with changing commands: the logged terms (the action rate among them) add up to each
    episode's summed reward (mean over envs) per second."""
    env = make_point_ctrl_env(4, seed=2, **{**EXACT, "episode_length_s": 3 * DT})
    rewards = []
    for k in range(3):
        _, reward, _, time_outs, extras = env.step(torch.full((4, 4), 0.2 * (-1) ** k))
        rewards.append(reward)
    assert time_outs.all()
    names = ["distance_coarse", "distance_fine", "lin_vel", "ang_vel", "action_rate", "crash"]
    assert extras["log"]["Episode_Reward/action_rate"] < 0.0
    total = sum(extras["log"][f"Episode_Reward/{k}"] for k in names) * 3 * DT
    assert total == pytest.approx(torch.stack(rewards).sum(0).mean().item(), rel=1e-5)
