"""Gear-assembly task: reward and observation pieces against hand-computed values, the env's observation groups,
reward and success on hand-placed configurations, config errors, the two CPU backends' agreement, the per-reset
shaft-estimate error, the IK action, a held gear, the scripted insertion through the env, and 2-iteration teacher and
distillation runs through train.py.

Envs are tiny (4 envs, a start bank of 8 settled grasps); the env fixture is shared by the tests of this module.
"""

from __future__ import annotations

import math

import pytest
import torch

from foundation.tasks import load_task_cfgs, make_env
from foundation.tasks.gear_assembly.observations import (GEAR_POSE_TERMS, OBS_DIM_CFG, POLICY_OBS_ORDER,
                                                         TEACHER_OBS_ORDER, concat_terms, contact_point_on_plane,
                                                         group_size, sample_estimate_error)
from foundation.tasks.gear_assembly.rewards import (axial_radial_error, keypoint_distance, keypoint_offsets,
                                                    squashing_fn)
from tests.conftest import set_cfg

NUM_ENVS = 4
IDENTITY = torch.tensor([[1.0, 0.0, 0.0, 0.0]])


def gear_env(backend: str = "mujoco_batch", seed: int = 0, **values):
    """A ``gear_assembly`` env of NUM_ENVS envs and a start bank of 8, nested fields ``a__b=value`` set."""
    env_cfg, _ = load_task_cfgs("gear_assembly")
    set_cfg(env_cfg, scene__num_envs=NUM_ENVS, seed=seed, start_bank_size=8, sim__backend=backend, **values)
    return make_env("gear_assembly", env_cfg)


@pytest.fixture(scope="module")
def env():
    return gear_env()


# ------------------------------------------------------------------------------------------------ pure pieces
def test_squashing_fn_matches_factory_values_by_hand():
    x = torch.tensor([0.0, 0.01, 0.1])
    # r(0) = 1 / (2 + b); r(0.01; 50, 2) = 1 / (e^0.5 + 2 + e^-0.5) = 1 / 4.25525;
    # r(0.1; 5, 4) = 1 / (e^0.5 + 4 + e^-0.5) = 1 / 6.25525
    assert torch.allclose(squashing_fn(x[:1], 5, 4), torch.tensor([1 / 6]))
    assert torch.allclose(squashing_fn(x[:1], 100, 0), torch.tensor([0.5]))
    assert squashing_fn(x[1:2], 50, 2).item() == pytest.approx(1 / 4.25525, rel=1e-5)
    assert squashing_fn(x[2:], 5, 4).item() == pytest.approx(1 / 6.25525, rel=1e-5)
    # Symmetric in x and decreasing in |x|.
    assert torch.allclose(squashing_fn(-x, 50, 2), squashing_fn(x, 50, 2))
    assert (squashing_fn(x, 50, 2).diff() < 0).all()
    with pytest.raises(ValueError, match="a > 0"):
        squashing_fn(x, 0.0, 1.0)


def test_keypoints_lie_on_the_axis_and_their_distance_sees_offset_and_tilt():
    offsets = keypoint_offsets(4, 0.15)
    assert torch.allclose(offsets[:, 2], torch.tensor([-0.075, -0.025, 0.025, 0.075]))
    assert (offsets[:, :2] == 0).all()
    origin = torch.zeros(1, 3)
    assert keypoint_distance(origin, IDENTITY, origin, IDENTITY, offsets).item() == 0.0
    shifted = torch.tensor([[0.003, 0.0, 0.004]])
    assert keypoint_distance(shifted, IDENTITY, origin, IDENTITY, offsets).item() == pytest.approx(0.005)
    # Turned upside down about x: keypoints at ±0.075 swap (0.15 apart), those at ±0.025 too (0.05): mean 0.1 m.
    flipped = torch.tensor([[0.0, 1.0, 0.0, 0.0]])
    assert keypoint_distance(origin, flipped, origin, IDENTITY, offsets).item() == pytest.approx(0.1)
    # A yaw about the axis moves no keypoint: the hole is round.
    yawed = torch.tensor([[math.cos(0.4), 0.0, 0.0, math.sin(0.4)]])
    assert keypoint_distance(origin, yawed, origin, IDENTITY, offsets).item() == pytest.approx(0.0, abs=1e-7)


def test_axial_radial_error_in_a_yawed_shaft_frame():
    yawed = torch.tensor([[math.cos(0.3), 0.0, 0.0, math.sin(0.3)]])
    height, radial = axial_radial_error(torch.tensor([[0.003, -0.004, 0.012]]), torch.tensor([[0.0, 0.0, 0.01]]),
                                        yawed)
    assert height.item() == pytest.approx(0.002) and radial.item() == pytest.approx(0.005)


def test_contact_point_on_plane_recovers_a_known_contact_whatever_the_sign_convention():
    torch.manual_seed(0)
    sensor = torch.tensor([[0.5, 0.1, 0.3], [0.4, -0.1, 0.25], [0.5, 0.0, 0.3]])
    point = torch.tensor([[0.507, 0.096, 0.19], [0.39, -0.11, 0.15], [0.5, 0.0, 0.2]])
    force = torch.tensor([[1.8, -0.4, 5.0], [-0.5, 0.3, -3.0], [2.0, 0.0, 0.5]])  # the last: |F_z| below 1 N
    torque = torch.linalg.cross(point - sensor, force, dim=1)  # τ about the sensor of a force acting at `point`
    for sign in (1.0, -1.0):  # a sensor reporting the reaction: same line of action
        found, in_contact = contact_point_on_plane(sign * force, sign * torque, sensor, point[:, 2], 1.0)
        assert in_contact.tolist() == [True, True, False]
        assert torch.allclose(found[:2], point[:2], atol=1e-6)
        assert torch.equal(found[2], sensor[2])  # no contact located: the sensor point


def test_observation_groups_are_declared_once_and_policy_has_no_gear_pose():
    assert group_size(POLICY_OBS_ORDER) == 46 and group_size(TEACHER_OBS_ORDER) == 58
    assert not GEAR_POSE_TERMS & set(POLICY_OBS_ORDER)
    assert GEAR_POSE_TERMS <= set(TEACHER_OBS_ORDER)
    terms = {name: torch.full((2, size), float(i)) for i, (name, size) in enumerate(OBS_DIM_CFG.items())}
    policy = concat_terms(terms, POLICY_OBS_ORDER)
    assert policy.shape == (2, 46) and policy[0, 0] == list(OBS_DIM_CFG).index("joint_pos")
    with pytest.raises(ValueError, match="width"):
        concat_terms({**terms, "ee_pos": torch.zeros(2, 4)}, POLICY_OBS_ORDER)
    with pytest.raises(ValueError, match="Unknown observation terms"):
        group_size(("joint_pos", "gear_velocity"))


def test_estimate_error_respects_its_bound():
    g = torch.Generator().manual_seed(0)
    err = sample_estimate_error(10_000, 0.005, g)
    assert err.shape == (10_000, 3) and err.abs().max() <= 0.005
    assert err.abs().max() > 0.0049 and err.mean().abs().max() < 2e-4  # fills the range, centred
    with pytest.raises(ValueError, match=">= 0"):
        sample_estimate_error(1, -0.001, g)


# ------------------------------------------------------------------------------------------------------- env
def test_env_builds_with_the_declared_observation_sizes(env):
    obs, _ = env.reset()
    assert {k: v.shape for k, v in obs.items()} == {"policy": (NUM_ENVS, 46), "teacher": (NUM_ENVS, 58)}
    assert env.observation_sizes() == {"policy": 46, "teacher": 58}
    assert all(torch.isfinite(v).all() for v in obs.values())
    # The start: gear held at the TCP, its bottom 1-5 cm above the shaft tip (cfg ranges) plus settling.
    gear_above_tip = env._compute_state()["height_error"] - env._tip_above_seated - 0.005
    assert ((gear_above_tip > 0.005) & (gear_above_tip < 0.055)).all()


def test_the_cpu_backends_start_alike_and_agree_on_a_short_rollout():
    """MuJoCo C as one model of N copies, as N simulations on threads, and MuJoCo Warp on its CPU device: the same
    start (same seed; the reset's wrench is the start bank's, not a stale sensor), and the same privileged observation
    after 5 policy steps of one action, to 1e-3 (the wrist torque's size; float64 C physics, float32 Warp), the TCP
    to 0.1 mm and the gear's pose relative to its seat to 0.01 mm. Free-air starts only: a contact start sets the gear
    on the shaft within these steps, where float32 Warp's wrist torque differs from float64 C's by ~0.01 N·m."""
    envs = [gear_env(backend, gear_scene__start__contact_fraction=0.0)
            for backend in ("mujoco", "mujoco_batch", "mujoco_warp")]
    obs = [env.reset(seed=0)[0]["teacher"] for env in envs]
    for other in obs[1:]:
        assert torch.allclose(obs[0], other, atol=1e-5)
    action = torch.tensor([[0.5, -0.3, -0.8, 0.2]]).repeat(NUM_ENVS, 1)
    for _ in range(5):
        obs = [env.step(action)[0]["teacher"] for env in envs]
    ee = sum(OBS_DIM_CFG[t] for t in TEACHER_OBS_ORDER[:TEACHER_OBS_ORDER.index("ee_pos")])
    gear = sum(OBS_DIM_CFG[t] for t in TEACHER_OBS_ORDER[:TEACHER_OBS_ORDER.index("gear_pos_rel_seated")])
    assert not torch.allclose(obs[0][:, gear:gear + 3], envs[0].reset(seed=0)[0]["teacher"][:, gear:gear + 3],
                              atol=1e-3)  # the rollout moved the gear
    for other in obs[1:]:
        assert torch.allclose(obs[0], other, atol=1e-3)
        assert torch.allclose(obs[0][:, ee:ee + 3], other[:, ee:ee + 3], atol=1e-4)
        assert torch.allclose(obs[0][:, gear:gear + 3], other[:, gear:gear + 3], atol=1e-5)


def test_a_bad_config_fails_before_any_work_naming_the_fields():
    with pytest.raises(ValueError, match=r"(?s)action.pos_scale_m.*must be > 0 on every axis.*"
                                         r"terminations.drop_distance_m=0.0: must be > 0"):
        gear_env(action__pos_scale_m=(0.01, 0.0, 0.0025), terminations__drop_distance_m=0.0)
    with pytest.raises(ValueError, match="action_space=6: must be 4"):
        gear_env(action_space=6)
    with pytest.raises(ValueError, match=r"(?s)contact_xy_radius_m=\(0.008, 0.003\): must be \(low, high\).*"
                                         r"contact_fraction=1.5: must be in \[0, 1\]"):
        gear_env(gear_scene__start__contact_fraction=1.5, gear_scene__start__contact_xy_radius_m=(0.008, 0.003))


def test_policy_observation_does_not_see_the_gear(env):
    env.reset(seed=3)
    sim = env.sim
    env.generator.manual_seed(7)
    before = env._get_observations()
    qpos = sim.qpos.clone()
    qpos[:, env._gear_q[:3]] += torch.tensor([0.01, -0.02, 0.005], dtype=qpos.dtype)
    sim.qpos[:] = qpos
    sim.kinematics()
    env.generator.manual_seed(7)  # the same wrench noise
    after = env._get_observations()
    assert torch.equal(before["policy"], after["policy"])
    assert not torch.allclose(before["teacher"], after["teacher"])


def place_base_under_gear(env, shift_m=(0.0, 0.0, 0.0)):
    """Hand-placed configuration: gear axis vertical, base moved so that the gear is seated, then shifted by
    ``shift_m`` (the gear relative to its seated pose is then ``-shift_m``). Kinematics only."""
    sim = env.sim
    qpos = sim.qpos.clone()
    qpos[:, env._gear_q[3:]] = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=qpos.dtype)
    seated_local = env._seated_local.to(qpos.dtype)
    qpos[:, env._base_q[:3]] = qpos[:, env._gear_q[:3]] - seated_local + torch.tensor(shift_m, dtype=qpos.dtype)
    qpos[:, env._base_q[3:]] = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=qpos.dtype)
    sim.qpos[:] = qpos
    sim.kinematics()


@pytest.mark.parametrize("shift_mm, seated, engaged", [
    ((0.0, 0.0, 0.0), True, True),
    ((0.0, 0.0, -1.5), True, True),  # gear 1.5 mm above its seat: within the 2 mm height tolerance
    ((0.0, 0.0, -2.5), False, True),  # 2.5 mm above: engaged on the shaft, not seated
    ((2.0, 0.0, 0.0), True, True),  # 2 mm off the axis: within the 2.5 mm tolerance
    ((0.0, 3.0, 0.0), False, False),  # 3 mm off the axis
    ((0.0, 0.0, -16.0), False, False),  # above the shaft tip
])
def test_reward_and_success_on_hand_placed_configurations(env, shift_mm, seated, engaged):
    env.reset(seed=1)
    place_base_under_gear(env, tuple(s / 1000 for s in shift_mm))
    terminated, _ = env._get_dones()
    env._prev_actions = torch.zeros(NUM_ENVS, 4)
    env._actions = torch.tensor([[0.5, 0.0, 0.0, 0.0]]).repeat(NUM_ENVS, 1)
    reward = env._get_rewards()
    state = env._state
    assert (state["seated"] == seated).all() and (state["engaged"] == engaged).all() and not terminated.any()
    d = math.dist(shift_mm, (0, 0, 0)) / 1000  # every keypoint is offset by the same vector
    assert state["keypoint_distance"] == pytest.approx(torch.full((NUM_ENVS,), d), abs=1e-6)

    def r(a, b, x=d):
        return 1 / (math.exp(a * x) + b + math.exp(-a * x))

    radial = math.hypot(shift_mm[0], shift_mm[1]) / 1000  # the gear's distance from the shaft axis
    expected = r(5, 4) + r(50, 2) + r(100, 0) + 2.0 * r(100, 0, radial) + engaged + seated - 0.1 * 0.5
    assert reward == pytest.approx(torch.full((NUM_ENVS,), expected), abs=1e-5)


def test_play_camera_follows_the_gear_and_a_wrong_body_name_lists_the_valid_ones(env):
    from foundation.rsl_rl.rendering import camera_settings

    cam = camera_settings(env, distance=0.5)
    assert env.sim.model.body(cam["track_body"]).name == "gear" and cam["distance"] == 0.5
    assert camera_settings(env)["distance"] == env.cfg.viewer.distance_m == 0.3
    env.cfg.viewer.body_name = "gears"
    try:
        with pytest.raises(ValueError, match="env.viewer.body_name: .*no body named 'gears'.*gear_base"):
            camera_settings(env)
    finally:
        env.cfg.viewer.body_name = "gear"


@pytest.mark.parametrize("fraction", [0.0, 1.0])
def test_contact_starts_hang_the_gear_just_above_the_shaft_top_off_its_axis(fraction):
    """With ``contact_fraction`` 1 every start's gear is 0.5-2 mm above the shaft tip and 3-8 mm off its axis (the
    default ranges), held, and not touching yet (the reset's wrench is the bank's, at rest); with 0, every gear is
    at least 1 cm above the tip (``gear_height_m``)."""
    env = gear_env(gear_scene__start__contact_fraction=fraction)
    assert env._bank["contact"].all() if fraction else not env._bank["contact"].any()
    half = env._grasp_scene.gear_half_thickness_m
    for seed in range(3):
        env.reset(seed=seed)
        gear = env.sim.site_pos_w[:, env._gear_site].float() - env.sim.env_origins.float()
        offset = gear - env.shaft_tip_pos()
        height, radial = offset[:, 2] - half, offset[:, :2].norm(dim=1)
        if fraction:
            assert ((height > 0.0004) & (height < 0.0021)).all(), height
            assert ((radial > 0.003 - 1e-5) & (radial < 0.008 + 1e-5)).all(), radial
        else:
            assert (height > 0.0099).all(), height
        assert ((gear - env.tcp_pos()).norm(dim=1) < 0.002).all()  # held: the gear centre at the TCP
        obs, *_ = env.step(torch.zeros(NUM_ENVS, 4))
        assert not env.reset_buf.any()


def test_estimate_error_is_drawn_per_reset_and_constant_within_the_episode():
    env = gear_env(noise__shaft_estimate_error_m=0.002)
    cols = slice(sum(OBS_DIM_CFG[t] for t in POLICY_OBS_ORDER[:POLICY_OBS_ORDER.index("shaft_pos_est")]), None)
    obs, _ = env.reset(seed=0)
    error = env.shaft_estimate_error().clone()
    assert error.abs().max() <= 0.002 and (error != 0).all()
    for _ in range(5):
        obs, *_ = env.step(torch.zeros(NUM_ENVS, 4))
        assert torch.equal(env.shaft_estimate_error(), error)
        seen = obs["policy"][:, cols][:, :3] - env.shaft_tip_pos()
        assert torch.allclose(seen, error, atol=1e-6)
    env.reset()
    assert (env.shaft_estimate_error() != error).all()


def test_ik_action_reaches_the_commanded_delta_pose(env):
    """The joint targets of one action (1, -0.5, 0.5, 0.3) put the TCP (by kinematics) at the commanded delta
    (action ⊙ pos_scale_m, and 0.3 × yaw_scale_rad of yaw) within 8 % per axis and 2 mrad: one damped
    least-squares step, whose damping (λ = 0.05) shortens it by ~5 %; the gripper still points down."""
    env.reset(seed=2)
    ac = env.cfg.action
    p0, r0 = env._tcp_pose()
    action = torch.tensor([[1.0, -0.5, 0.5, 0.3]]).repeat(NUM_ENVS, 1)
    env._pre_physics_step(action)
    qpos = env.sim.qpos.clone()
    qpos[:, env._arm_q] = env._joint_targets.to(qpos.dtype)
    env.sim.qpos[:] = qpos
    env.sim.kinematics()
    p1, r1 = env._tcp_pose()
    commanded = action[:, :3] * torch.tensor(ac.pos_scale_m)
    assert ((p1 - p0 - commanded).abs() <= 0.08 * commanded.abs()).all()
    r_rel = r1 @ r0.transpose(1, 2)
    yaw = torch.atan2(r_rel[:, 1, 0], r_rel[:, 0, 0])
    assert yaw == pytest.approx(torch.full((NUM_ENVS,), 0.3 * ac.yaw_scale_rad), abs=2e-3)
    assert r1[:, 2, 2] == pytest.approx(torch.full((NUM_ENVS,), -1.0), abs=1e-4)


def test_a_held_up_action_lifts_the_gear_in_the_fingers(env):
    env.reset(seed=4)
    p0 = env.tcp_pos().clone()
    steps = 10
    for _ in range(steps):
        env.step(torch.tensor([[0.0, 0.0, 1.0, 0.0]]).repeat(NUM_ENVS, 1))
    lift = env.tcp_pos() - p0
    # Straight up, by a part of the commanded 10 × z scale: each step's target leads the TCP by the z scale and the
    # reduced-gain servos follow with a time constant of ~0.13 s (~25 % of the lead per 1/30 s step).
    scale_z = env.cfg.action.pos_scale_m[2]
    assert (lift[:, 2] > 0.2 * steps * scale_z).all() and (lift[:, 2] <= steps * scale_z).all()
    assert (lift[:, :2].norm(dim=1) < 0.1 * lift[:, 2]).all()
    assert not env._state["dropped"].any()


def test_the_gear_stays_held_through_three_seconds_of_zero_actions(env):
    env.reset(seed=5)
    sim = env.sim

    def gear_in_tcp():
        pos, rot = env._tcp_pose()
        return (rot.transpose(1, 2) @ (sim.site_pos_w[:, env._gear_site].float() - pos).unsqueeze(-1)).squeeze(-1)

    start = gear_in_tcp()
    for _ in range(int(3.0 / env.step_dt)):
        _, _, terminated, _, _ = env.step(torch.zeros(NUM_ENVS, 4))
        assert not terminated.any()
    assert (gear_in_tcp() - start).norm(dim=1).max() < 0.0015  # slip in the fingers below 1.5 mm


def test_the_scripted_insertion_through_the_env_seats_on_the_exact_axis_and_not_from_3_mm_off():
    """The scene's scripted controller driving the env's actions (same IK, action scale, servos, contact): it seats
    every gear when aimed at the exact shaft, none when aimed 3 mm off the axis (contact is real), and the gear-shaft
    penetration stays below 0.5 mm."""
    from foundation.envs import RslRlVecEnvWrapper
    from foundation.rsl_rl.evaluation import evaluate
    from foundation.tasks.gear_assembly.scripted_policy import ScriptedPolicy

    env = gear_env(noise__shaft_estimate_error_m=0.0)
    gear_geoms, base_geoms = (env.sim.body_geom_ids(env.cfg.gear_scene.gear_body),
                              env.sim.body_geom_ids(env.cfg.gear_scene.base_body))

    class DeepestPenetration(ScriptedPolicy):
        """The scripted policy, also keeping the deepest gear-base penetration seen before each action."""

        deepest = 0.0

        def forward(self, obs):
            self.deepest = max(self.deepest, env.sim.max_penetration(gear_geoms, base_geoms).max().item())
            return super().forward(obs)

    for off_axis_m, seated in ((0.0, True), (0.003, False)):
        policy = DeepestPenetration(env, aim_off_axis_m=off_axis_m)
        result = evaluate(policy, RslRlVecEnvWrapper(env), seed=1)
        assert result.success_rate == (1.0 if seated else 0.0) and result.crash_rate == 0.0
        assert policy.deepest < 0.0005


def test_the_contact_term_is_silent_in_free_air_and_points_at_a_shaft_the_gear_rests_on():
    """The scripted insertion aimed 5 mm off the axis rests the gear on the shaft's top face: the ``policy`` group's
    contact point (from the noisy, tared wrist wrench) then lies towards the shaft axis from the TCP; before any
    contact (the reset's observation, the first steps in free air) it reports none."""
    from foundation.tasks.gear_assembly.scripted_policy import ScriptedPolicy

    env = gear_env(noise__shaft_estimate_error_m=0.0, gear_scene__start__contact_fraction=0.0)
    col = sum(OBS_DIM_CFG[t] for t in POLICY_OBS_ORDER[:POLICY_OBS_ORDER.index("contact_pos_rel_ee")])
    policy = ScriptedPolicy(env, aim_off_axis_m=0.005)
    obs, _ = env.reset(seed=2)
    policy.reset()
    terms = [obs["policy"][:, col:col + 3]]
    for _ in range(150):
        obs, *_ = env.step(policy(obs))
        terms.append(obs["policy"][:, col:col + 3])
    terms = torch.stack(terms)
    assert (terms[:6] == 0).all()  # the gear starts >= 1 cm above the shaft tip and moves < 2.5 mm per step down
    assert (terms[-20:, :, 2] == 1).all()  # resting on the shaft's top face, pushed down
    height, radial = axial_radial_error(env.sim.site_pos_w[:, env._gear_site].float(),
                                        env.sim.site_pos_w[:, env._seated_site].float(),
                                        env.sim.body_quat_w[:, env._base_body].float())
    assert (radial > 0.003).all() and (height > 0.01).all()  # on top of the shaft, not on it
    to_shaft = (env.shaft_tip_pos() - env.tcp_pos())[:, :2]
    located = terms[-20:, :, :2].mean(dim=0)
    cos = (to_shaft * located).sum(dim=1) / (to_shaft.norm(dim=1) * located.norm(dim=1))
    assert (cos > 0.5).all(), cos


# ------------------------------------------------------------------------------------------------- train.py
TINY = ["--num_envs", "4", "--max_iterations", "2", "--seed", "1", "env.episode_length_s=0.5",
        "env.start_bank_size=8", "agent.num_steps_per_env=8", "agent.eval.interval=1", "agent.eval.num_episodes=4",
        "agent.eval.final_num_episodes=4"]


def test_two_iteration_teacher_and_distillation_runs(log_dir):
    from foundation.rsl_rl.train import main

    teacher = main(["--task", "gear_assembly", *TINY])
    assert teacher["eval"].num_episodes == 4
    student = main(["--task", "gear_assembly_distillation", "--checkpoint", teacher["checkpoint"], *TINY,
                    "agent.algorithm.phase1_iterations=1"])  # one teacher-driven iteration, one student-driven
    assert student["eval"].num_episodes == 4
    assert 0.0 <= student["eval"].success_rate <= 1.0
