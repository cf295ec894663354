"""Gear assembly with a Franka Panda: slide a gear held in the fingers onto a shaft (``gear_assembly`` task ids).

Reads like Isaac Lab's Factory GearMesh and its sim-to-real gear-assembly task: the gear starts grasped above the
shaft with a random offset, the policy commands small end-effector motions, the reward compares keypoints of the gear
with its seated pose, and the episode ends at a time-out or when the gear falls out of the fingers.

Action chain, once per policy step (``_pre_physics_step``; the joint targets are then held for the ``decimation``
physics steps, so the backend may run them in one call):

    a ∈ [-1, 1]^4 = (Δx, Δy, Δz, Δyaw)   (world frame)
    target position  = current TCP position + a[:3] ⊙ pos_scale_m, clipped to ee_bounds
    target rotation  = yaw(current yaw + a[3] · yaw_scale_rad) · R_home   (gripper pointing down; yaw clipped)
    joint targets    = q + J^T (J J^T + λ² I)^-1 [position error; rotation error]
                       (damped least squares: ``foundation.controllers.DifferentialIKController``, Isaac Lab's
                        ``DifferentialInverseKinematicsAction``, with an absolute pose command built from the
                        current pose)

Why 4-D and not Factory's 6-D: the shaft is vertical and the gear's hole round, so roll and pitch only add search
dimensions (6-D doubles the exploration space on a CPU budget); the target orientation is re-projected onto "pointing
down" every step, so a tilt the arm picks up in contact is corrected. Why the target is built from the *current* TCP
pose each step: the position error the joint servos see, and with it the force the arm pushes with, is bounded by
``pos_scale_m`` — part of keeping contact honest (``docs/gear_physics.md``).

Start (``_reset_idx``): a state drawn from a bank of settled grasps built at construction by the gear scene's own
grasp recipe (``_build_start_bank``: arm posed by IK with the TCP at a random point above the shaft region, random
hand yaw, the fingers closed on the gear by the grip command for ``settle_s``, no weld), and the gear base placed per
episode under the gear at a random xy offset and yaw (so the base's position spans ``base_x_m``/``base_y_m`` widened
by twice the offset range: the bank's gear drew one offset, the reset another). Settling once at construction, not at
every reset, keeps resets cheap and lets the one-model backend reset a subset of environments (it cannot step one env
alone).

Frames: world, quaternions (w, x, y, z); env frame = world minus ``sim.env_origins``; metres, radians, seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from foundation.controllers import DifferentialIKController, DifferentialIKControllerCfg
from foundation.envs import DirectRLEnv, DirectRLEnvCfg, SceneCfg, SimCfg, ViewerCfg
from foundation.sim import load_spec
from foundation.tasks.gear_assembly.harness import GearScene
from foundation.tasks.gear_assembly.observations import (OBS_DIM_CFG, POLICY_OBS_ORDER, TEACHER_OBS_ORDER,
                                                         concat_terms, contact_point_on_plane, group_size,
                                                         sample_estimate_error)
from foundation.tasks.gear_assembly.rewards import (axial_radial_error, keypoint_distance, keypoint_offsets,
                                                    squashing_fn)
from foundation.tasks.gear_assembly.scene_cfg import GearSceneCfg, GearStartCfg
from foundation.tasks.gear_assembly.success import GearSuccessCfg, gear_seated
from foundation.utils.config import FieldChecks
from foundation.utils.math import matrix_from_quat, quat_apply, quat_from_angle_axis, quat_from_matrix, quat_mul


@dataclass
class ActionCfg:
    """Delta end-effector pose action, turned into joint targets by damped-least-squares IK.

    Attributes:
        pos_scale_m: TCP translation per policy step at |a| = 1 along world x, y, z, m (Isaac Lab Factory: 0.02 m at
            15 Hz). The target leads the TCP by at most this, which bounds how hard the arm pushes (the servos' error).
            z, 2.5 mm, bounds the push on a blocked gear, chosen by measurement: the scripted insertion aimed 3 mm off
            the axis and pushing down with a lead of 1 / 2.5 / 5 / 10 mm reached 0.32 / 0.44 / 0.55 / 0.39 mm of
            gear-base penetration (the issue's bound: 0.5 mm) and seated 0 / 16 / 0 / 0 % (the gear slipping in the
            fingers onto the shaft) — ``scripts/eval_scripted_gear.py --aim_off_axis_mm 3 --max_push_mm 2.5 --seed 5
            --num_envs 32``, with ``env.action.pos_scale_m=[0.01,0.01,0.01]`` for leads above 2.5 mm; an earlier,
            less damped version of the scene reached 0.96 mm at 10 mm. Those were with a 5 N-per-finger grip; with
            today's 20 N (64 starts, seed 5) the 2.5 mm lead reaches 0.46 mm and seats 29.7 % from 3 mm off — the
            upright gear rests on the rounded edge and the arm yields sideways (docs/gear_physics.md step 11). x and y,
            1 cm: a lateral lead holds the gear firmly on the aimed axis (docs/gear_physics.md: a 0.3 mm lateral lead
            let the shaft push the gear 3 mm over), and moves 4× faster across.
        yaw_scale_rad: Hand yaw per policy step at |a| = 1, rad (Factory: 0.097 rad per axis).
        yaw_limit_rad: The target yaw is clipped to ± this from the home yaw, rad (joint 7 has ±2.9 rad of range;
            the start draws ±30°).
        ik_damping: λ of the damped least squares, in metres/radians (Isaac Lab's ``dls`` default is 0.01; 0.05 is the
            gear scene's harness value for this arm near its home pose: smaller joint steps, it shortens a step ~5 %).
        ee_bounds_lo_m, ee_bounds_hi_m: The TCP target is clipped to this env-frame box, m: the shaft region (base
            x 0.45–0.55, y ±0.1 m) with room to move, and above the base plate.
    """

    pos_scale_m: tuple[float, float, float] = (0.01, 0.01, 0.0025)
    yaw_scale_rad: float = 0.1
    yaw_limit_rad: float = math.pi / 2
    ik_damping: float = 0.05
    ee_bounds_lo_m: tuple[float, float, float] = (0.30, -0.25, 0.02)
    ee_bounds_hi_m: tuple[float, float, float] = (0.70, 0.25, 0.30)

    def validate(self) -> None:
        """Raise ``ConfigError`` naming every field out of range."""
        c = FieldChecks(self, "action config")
        c.require(all(v > 0 for v in self.pos_scale_m), "pos_scale_m", "must be > 0 on every axis")
        c.at_least("yaw_scale_rad", 0.0, " rad")
        c.positive("yaw_limit_rad", " rad")
        c.positive("ik_damping")
        c.require(all(lo < hi for lo, hi in zip(self.ee_bounds_lo_m, self.ee_bounds_hi_m)), "ee_bounds_lo_m",
                  "must be below ee_bounds_hi_m on every axis")
        c.raise_errors()


@dataclass
class ObsNoiseCfg:
    """Sensing imperfections of the deployable ``policy`` group.

    Attributes:
        wrist_force_n: Std of Gaussian noise on each force axis, N (of the order of a wrist F/T sensor's noise,
            e.g. ATI Mini45: ~0.05–0.25 N; a design choice, not a measured constant).
        wrist_torque_nm: Std of Gaussian noise on each torque axis, N·m (same source).
        shaft_estimate_error_m: Bound of the shaft-estimate error, drawn per reset per axis ~ U(±bound), m (Isaac Lab's
            gear-assembly task: ±5 mm).
        wrist_tare_samples: The wrist sensor is tared at every reset (the hand at rest, the gear hanging free) by
            averaging this many readings, each with the noise above: the tare's error has std noise/√samples and
            stays for the episode (what zeroing a real F/T sensor before the approach does).
        contact_min_force_n: The ``contact_pos_rel_ee`` term locates a contact only while the tared vertical force
            exceeds this, N: 5× the std of a tared reading's noise (√2 · 0.2 N), below the ~4–6 N the arm pushes a
            blocked gear with (measured: the scripted insertion resting on the shaft top 5 mm off the axis).
    """

    wrist_force_n: float = 0.2
    wrist_torque_nm: float = 0.01
    shaft_estimate_error_m: float = 0.005
    wrist_tare_samples: int = 10
    contact_min_force_n: float = 1.5

    def validate(self) -> None:
        """Raise ``ConfigError`` naming every field out of range."""
        c = FieldChecks(self, "observation noise config")
        for key in ("wrist_force_n", "wrist_torque_nm", "shaft_estimate_error_m"):
            c.at_least(key, 0.0)
        c.at_least("wrist_tare_samples", 1)
        c.positive("contact_min_force_n", " N")
        c.raise_errors()


@dataclass
class RewardCfg:
    """Reward weights (per policy step, not scaled by ``step_dt``: Factory's convention, whose coefficients these are).

    Attributes:
        num_keypoints, keypoint_scale_m: Keypoints on the gear's axis and on the seated axis (Factory: 4 over 0.15 m).
        kp_baseline, kp_coarse, kp_fine: Weights of the squashed keypoint distance at (a, b) = ``*_coef`` (Factory:
            1 each with (5, 4), (50, 2), (100, 0)).
        xy_align, xy_align_coef: Weight and (a, b) of the squashed distance of the gear centre from the shaft axis
            (ours, not Factory's). The keypoint distance alone has two traps at ~2 cm, both measured: a gear lowered
            beside the shaft, and a gear resting on the shaft's top face near its rim (the first teacher run ended
            there, 14.3 mm off the axis, 0 % success): from either, moving over the axis does not shorten the keypoint
            distance. This term pays for being over the axis at any height; with a = 100 /m it is felt across the
            start range (0.23 of its peak 0.5 at 1.4 cm) and peaks within the chamfer's reach.
        engaged: Bonus per step while the gear is engaged on the shaft (Factory ``curr_engaged``: 1).
        success: Bonus per step while the gear is seated (Factory ``curr_success``: 1).
        action_rate: Weight of ``|a_t - a_{t-1}|`` (Factory ``action_grad_penalty_scale``: -0.1).
        drop: One-off reward when the gear falls out of the fingers (ours; Factory has no drop termination).
    """

    num_keypoints: int = 4
    keypoint_scale_m: float = 0.15
    kp_baseline: float = 1.0
    kp_baseline_coef: tuple[float, float] = (5.0, 4.0)
    kp_coarse: float = 1.0
    kp_coarse_coef: tuple[float, float] = (50.0, 2.0)
    kp_fine: float = 1.0
    kp_fine_coef: tuple[float, float] = (100.0, 0.0)
    xy_align: float = 2.0
    xy_align_coef: tuple[float, float] = (100.0, 0.0)
    engaged: float = 1.0
    success: float = 1.0
    action_rate: float = -0.1
    drop: float = -10.0

    def validate(self) -> None:
        """Raise ``ConfigError`` naming every field out of range (the squashing needs a > 0, b > -2)."""
        c = FieldChecks(self, "reward config")
        c.at_least("num_keypoints", 2)
        c.positive("keypoint_scale_m", " m")
        for key in ("kp_baseline_coef", "kp_coarse_coef", "kp_fine_coef", "xy_align_coef"):
            a, b = getattr(self, key)
            c.require(a > 0 and b > -2, key, "must be (a, b) with a > 0 and b > -2")
        c.raise_errors()


@dataclass
class TerminationCfg:
    """Failure terminations.

    Attributes:
        drop_distance_m: The gear counts as dropped when its centre is farther than this from the TCP, m. The gear's
            outer radius is 15 mm; a gear that slipped in the fingers stays within ~1 cm (gear-scene measured
            ≤ 3.4 mm transient), one that fell is several cm away. (Isaac Lab's gear task: 15 cm from the gripper,
            for larger gears.)
    """

    drop_distance_m: float = 0.03

    def validate(self) -> None:
        """Raise ``ConfigError`` naming every field out of range."""
        c = FieldChecks(self, "termination config")
        c.positive("drop_distance_m", " m")
        c.raise_errors()


@dataclass
class GearAssemblyEnvCfg(DirectRLEnvCfg):
    """Gear-assembly task config.

    Attributes:
        sim: dt 1/360 s, the scene's own time step (its contact ``solref`` is tuned to it; ``docs/gear_physics.md``),
            and the ``mujoco_batch`` backend (N simulations on threads), by measurement: 1,599 / 2,115 / 2,351
            env-steps/s at 16 / 64 / 256 envs against 920 / 954 / 923 for one model of N copies and 84 / 153 / 190 for
            MuJoCo Warp on the CPU (``scripts/benchmark_env.py --task gear_assembly``, random actions, idle 2-core
            CPU; DESIGN.md §5's prototype had ~3×).
        scene: 256 envs; spacing 2 m (copies in one model must not reach each other: the Panda reaches 0.86 m).
        decimation: 12 → 30 Hz policy (Isaac Lab's gear-assembly task).
        episode_length_s: 8 s = 240 policy steps (Isaac Lab's gear task: 6.66 s): the scripted insertion through this
            env (its 1 mm push along the shaft) seats in 4.2 s on average, up to 6.4 s when it has to slide in from an
            estimate error (``scripts/eval_scripted_gear.py``, 128 starts).
        observation_space: Size of the ``policy`` group (``POLICY_OBS_ORDER``); the ``teacher`` group is
            ``TEACHER_OBS_ORDER``.
        action_space: 4: TCP (Δx, Δy, Δz, Δyaw).
        gear_scene: Names in the scene MJCF, arm home pose, grip command, settle time and start ranges (gear-scene).
        wrist_force_sensor, wrist_torque_sensor: The MJCF's force and torque sensors at the hand mount.
        start_bank_size: Settled grasp states built at construction (each with its own TCP point and hand yaw; ~55 ms
            each on the 2-core CPU: 1 s of settling at dt 1/360); the gear offset and base yaw are drawn fresh at every
            reset.
        settle_tolerance_m: A bank state whose gear ends farther than this from the TCP after settling is drawn again,
            m (a safeguard: the grasp recipe settles the gear within ~0.1 mm).
        viewer: ``play.py``'s camera follows the gear from 0.3 m (the whole arm is 1 m tall: tracking its base left the
            gear a few pixels wide).
        max_abs_qpos, max_abs_qvel: Runaway bounds (``DirectRLEnvCfg``): 1000 m (env origins included) or rad, 1000
            m/s or rad/s. Only a numerical blow-up reaches them: the Panda's joints move at most ~2.6 rad/s, a falling
            gear at a few m/s.
    """

    sim: SimCfg = field(default_factory=lambda: SimCfg(dt=1.0 / 360.0, backend="mujoco_batch"))
    scene: SceneCfg = field(default_factory=lambda: SceneCfg(num_envs=256, env_spacing=2.0))
    decimation: int = 12
    episode_length_s: float = 8.0
    observation_space: int = group_size(POLICY_OBS_ORDER)
    action_space: int = 4
    gear_scene: GearSceneCfg = field(default_factory=GearSceneCfg)
    action: ActionCfg = field(default_factory=ActionCfg)
    noise: ObsNoiseCfg = field(default_factory=ObsNoiseCfg)
    rewards: RewardCfg = field(default_factory=RewardCfg)
    success: GearSuccessCfg = field(default_factory=GearSuccessCfg)
    terminations: TerminationCfg = field(default_factory=TerminationCfg)
    wrist_force_sensor: str = "wrist_force"
    wrist_torque_sensor: str = "wrist_torque"
    start_bank_size: int = 256
    settle_tolerance_m: float = 0.002
    max_abs_qpos: float | None = 1000.0
    max_abs_qvel: float | None = 1000.0
    viewer: ViewerCfg = field(default_factory=lambda: ViewerCfg(body_name="gear", distance_m=0.3, elevation_deg=-15.0))

    def validate(self) -> None:
        """Raise ``ConfigError`` naming every field out of range (the base fields first; the nested configs check
        their own)."""
        super().validate()
        c = FieldChecks(self, "gear-assembly config")
        c.require(self.observation_space == group_size(POLICY_OBS_ORDER), "observation_space",
                  f"must be {group_size(POLICY_OBS_ORDER)} (the 'policy' group, POLICY_OBS_ORDER)")
        c.require(self.action_space == 4, "action_space", "must be 4 (TCP Δx, Δy, Δz, Δyaw)")
        c.at_least("start_bank_size", 1)
        c.positive("settle_tolerance_m", " m")
        c.raise_errors()


def _yaw_quat(yaw: torch.Tensor) -> torch.Tensor:
    """(N, 4) quaternions (w, x, y, z) of rotations about the world z axis by ``yaw`` (N,), rad."""
    return quat_from_angle_axis(yaw, torch.tensor([0.0, 0.0, 1.0], device=yaw.device).expand(len(yaw), 3))


@dataclass
class GearAssemblyDistillationEnvCfg(GearAssemblyEnvCfg):
    """The student's env (``gear_assembly_distillation``): the teacher's, with a quarter of the starts contact starts
    (``GearStartCfg.contact_fraction``: the gear just above the shaft's top face, 3-8 mm off its axis).

    Why the student's data and not the teacher's training: DAgger's student learns the teacher's actions in the states
    it collects, and with a ±5 mm shaft estimate it lands the gear on the shaft's top face far more often than its
    own rollouts alone show the teacher's answer there. The teacher is trained without them: from the same seed, a
    teacher trained with a quarter contact starts reached 62.99 % success against 96.68 % without (1024 evaluation
    episodes of the task's start distribution each; README, "Gear assembly, teacher"). Measured since: with the
    20 N grip they bought the student nothing measurable (97.56 % without them after 150 iterations, 95.12 % with
    them at the same point, 98.24 % at 300, ±5 mm); kept because the default student was trained and measured with
    them.
    """

    gear_scene: GearSceneCfg = field(default_factory=lambda: GearSceneCfg(start=GearStartCfg(contact_fraction=0.25)))


class GearAssemblyEnv(DirectRLEnv):
    """Gear assembly; observation groups ``policy`` and ``teacher`` (``observations.py``), 4 actions.

    Every episode reports ``extras["episode_outcomes"]``: ``success`` (the gear seated — ``gear_seated`` — and not
    dropped, at the episode's end), ``crash`` (the gear dropped), ``final_distance`` (the gear centre's distance from
    the shaft axis, m) and ``time_to_success`` (s from the episode start to the first seated step, NaN if none).
    """

    cfg: GearAssemblyEnvCfg
    constant_action_across_substeps = True  # joint targets are computed once per policy step and held

    def __init__(self, cfg: GearAssemblyEnvCfg, render_mode: str | None = None, **kwargs) -> None:
        super().__init__(cfg, render_mode, **kwargs)  # validates cfg first
        sim, gc, n, dev = self.sim, cfg.gear_scene, self.num_envs, self.device
        self._arm_q = sim.joint_qpos_cols(gc.arm_joints)
        self._arm_dof = sim.joint_dof_cols(gc.arm_joints)
        self._finger_q = sim.joint_qpos_cols(gc.finger_joints)
        self._finger_dof = sim.joint_dof_cols(gc.finger_joints)
        self._arm_act = sim.actuator_ids(gc.arm_actuators)
        self._grip_act = sim.actuator_ids([gc.gripper_actuator])[0]
        self._gear_q = sim.joint_qpos_cols([gc.gear_joint])
        self._base_q = sim.joint_qpos_cols([gc.base_joint])
        self._base_dof = sim.joint_dof_cols([gc.base_joint])
        self._tcp = sim.site_index(gc.tcp_site)
        self._gear_site = sim.site_index(gc.gear_site)
        self._tip_site = sim.site_index(gc.shaft_tip_site)
        self._seated_site = sim.site_index(gc.seated_site)
        self._gear_body = sim.body_index(gc.gear_body)
        self._base_body = sim.body_index(gc.base_body)
        self._force = sim.sensor_slice(cfg.wrist_force_sensor)
        self._torque = sim.sensor_slice(cfg.wrist_torque_sensor)
        model = sim.model
        self._ft_site = sim.site_index(model.site(int(model.sensor(cfg.wrist_force_sensor).objid[0])).name)
        self._joint_q = torch.tensor(self._arm_q + self._finger_q, device=dev)  # joint_pos / joint_vel columns
        self._joint_dof = torch.tensor(self._arm_dof + self._finger_dof, device=dev)
        arm_joint_ids = [model.joint(j).id for j in gc.arm_joints]
        self._arm_range = torch.as_tensor(model.jnt_range[arm_joint_ids], dtype=torch.float32, device=dev)
        # Shaft geometry from the model (base frame): tip and seated gear centre, and the gear's half thickness.
        self._tip_local = torch.as_tensor(model.site_pos[self._tip_site], dtype=torch.float32, device=dev)
        self._seated_local = torch.as_tensor(model.site_pos[self._seated_site], dtype=torch.float32, device=dev)
        self._tip_above_seated = float(self._tip_local[2] - self._seated_local[2])

        ac = cfg.action
        self._pos_scale = torch.tensor(ac.pos_scale_m, device=dev)
        self._bounds_lo = torch.tensor(ac.ee_bounds_lo_m, device=dev)
        self._bounds_hi = torch.tensor(ac.ee_bounds_hi_m, device=dev)
        self._actions = torch.zeros(n, 4, device=dev)
        self._prev_actions = torch.zeros(n, 4, device=dev)
        self._joint_targets = torch.zeros(n, 7, device=dev)
        self._estimate_error = torch.zeros(n, 3, device=dev)
        nc = cfg.noise
        self._wrench_noise_std = torch.tensor([nc.wrist_force_n] * 3 + [nc.wrist_torque_nm] * 3, device=dev)
        self._start_wrench = torch.zeros(n, 6, device=dev)  # the episode's start at rest (bank), sensor frame
        self._wrench_tare = torch.zeros(n, 6, device=dev)  # sensor frame, set at every reset
        self._first_success_step = torch.full((n,), -1, dtype=torch.long, device=dev)
        self._keypoints = keypoint_offsets(cfg.rewards.num_keypoints, cfg.rewards.keypoint_scale_m).to(dev)
        self._reward_names = ("kp_baseline", "kp_coarse", "kp_fine", "xy_align", "engaged", "success", "action_rate",
                              "drop")
        rc = cfg.rewards
        self._reward_weights = torch.tensor([rc.kp_baseline, rc.kp_coarse, rc.kp_fine, rc.xy_align, rc.engaged,
                                             rc.success, rc.action_rate, rc.drop], device=dev)
        self._episode_sums = torch.zeros(n, len(self._reward_names), device=dev)
        self._state: dict[str, torch.Tensor] = {}
        # The gear scene's grasp recipe on one MjData of this env's model: the start bank, and the TCP orientation at
        # the home pose (gripper pointing down), the reference of the yaw.
        self._grasp_scene = GearScene(cfg.gear_scene, model=model)
        self._q_home = torch.as_tensor(self._grasp_scene.home_tcp_quat(), dtype=torch.float32, device=dev)
        self._r_home = matrix_from_quat(self._q_home)
        self._ik = DifferentialIKController(DifferentialIKControllerCfg(
            command_type="pose", use_relative_mode=False, ik_method="dls", ik_params={"lambda_val": ac.ik_damping}),
            n, dev)
        self._bank, grasp_depth = self._build_start_bank(cfg.start_bank_size)
        # Height of the gear's bottom face below the TCP, m: where the held gear touches the shaft or anything under it
        # (the plane ``contact_pos_rel_ee`` cuts the contact force's line with). A property of the grasp design, like
        # the fingers' length: measured once on the settled grasps, not per episode.
        self._contact_depth = grasp_depth + self._grasp_scene.gear_half_thickness_m
        self.reset()

    def observation_sizes(self) -> dict[str, int]:
        """``{"policy": 46, "teacher": 58}`` (the sums of ``OBS_DIM_CFG`` over each group's order)."""
        return {"policy": group_size(POLICY_OBS_ORDER), "teacher": group_size(TEACHER_OBS_ORDER)}

    # -------------------------------------------------------------------------------------------------- scene
    def _setup_scene(self):  # -> mujoco.MjSpec (see DirectRLEnv._setup_scene)
        return load_spec(self.cfg.gear_scene.scene_xml)

    # -------------------------------------------------------------------------------------------- state access
    def _tcp_pose(self) -> tuple[torch.Tensor, torch.Tensor]:
        """TCP position (N, 3), world frame, m, and rotation matrix (N, 3, 3) TCP → world."""
        return (self.sim.site_pos_w[:, self._tcp].float(),
                self.sim.site_xmat_w[:, self._tcp].float().view(-1, 3, 3))

    def _arm_jacobian(self) -> torch.Tensor:
        """(N, 6, 7) TCP Jacobian of the arm joints, world frame, rows [linear; angular]."""
        return self.sim.site_jacobian(self._tcp)[:, :, self._arm_dof].float()

    def shaft_tip_pos(self) -> torch.Tensor:
        """(N, 3) exact shaft tip (centre of its top face), env frame, m."""
        return self.sim.site_pos_w[:, self._tip_site].float() - self.sim.env_origins.float()

    def shaft_seated_pos(self) -> torch.Tensor:
        """(N, 3) exact position of the gear centre when fully seated, env frame, m."""
        return self.sim.site_pos_w[:, self._seated_site].float() - self.sim.env_origins.float()

    def shaft_estimate_error(self) -> torch.Tensor:
        """(N, 3) this episode's shaft-estimate error (drawn at reset, constant in the episode), m."""
        return self._estimate_error

    def tcp_pos(self) -> torch.Tensor:
        """(N, 3) TCP position, env frame, m."""
        return self._tcp_pose()[0] - self.sim.env_origins.float()

    # ------------------------------------------------------------------------------------------------ start bank
    def _build_start_bank(self, size: int) -> tuple[dict[str, torch.Tensor], float]:
        """Settled grasp states, made by the gear scene's own grasp recipe (``GearScene.reset`` of
        ``harness.py``, on one ``MjData`` of this env's single-env model, so the same options and time step).

        Each state: the arm posed by IK with the TCP at a random point above the shaft region (``gear_scene.start``
        ranges) and a random hand yaw, the gear between the fingertip pads, the grip command applied and the physics
        run for ``settle_s`` (no weld). The whole single-env ``qpos``, ``qvel`` and ``ctrl`` are kept, and the wrist
        wrench at rest (the sensor's tare: the gear hangs free, and the base's pose, drawn per reset, does not touch
        it); a reset replaces only the base's pose. States whose gear ended farther than ``settle_tolerance_m`` from
        the TCP are left out (drawn again), so every start holds the gear. The first ``start.contact_fraction`` of
        the states are contact starts (``GearScene.reset(contact=True)``: the gear just above the shaft tip's height).

        Returns:
            The bank (``qpos``, ``qvel``, ``ctrl``, ``wrench`` (force; torque, sensor frame) and ``contact`` (bool)
            rows) and the mean height of the gear's centre below the TCP over its states, m.

        Raises:
            RuntimeError: if more than half of the settled grasps lost the gear.
        """
        scene = self._grasp_scene
        rng = np.random.default_rng(int(torch.randint(2**62, (1,), generator=self.generator)))
        states, depths, rejected = [], [], 0
        num_contact = round(self.cfg.gear_scene.start.contact_fraction * size)
        while len(states) < size:
            scene.reset(rng, contact=len(states) < num_contact)
            d = scene.data
            slip = float(np.linalg.norm(d.site_xpos[scene.gear_site] - d.site_xpos[scene.tcp]))
            if slip <= self.cfg.settle_tolerance_m and np.isfinite(d.qpos).all():
                states.append(np.concatenate([d.qpos, d.qvel, d.ctrl, d.sensordata[self._force],
                                              d.sensordata[self._torque]]))
                depths.append(float(d.site_xpos[scene.tcp][2] - d.site_xpos[scene.gear_site][2]))
            else:
                rejected += 1
                if rejected > size // 2 + 1:
                    raise RuntimeError(f"{rejected} settled start grasps lost the gear (farther than "
                                       f"{self.cfg.settle_tolerance_m * 1e3:.1f} mm from the TCP): the grasp does "
                                       "not hold.")
        table = torch.as_tensor(np.stack(states), dtype=torch.float32, device=self.device)
        nq, nv = self.sim.model.nq, self.sim.model.nv
        nu = self.sim.model.nu
        bank = {"qpos": table[:, :nq], "qvel": table[:, nq:nq + nv], "ctrl": table[:, nq + nv:nq + nv + nu],
                "wrench": table[:, nq + nv + nu:], "contact": torch.arange(size, device=self.device) < num_contact}
        bank["qvel"][:, self._base_dof] = 0.0
        return bank, float(np.mean(depths))

    def _origin_offsets(self, env_ids: torch.Tensor) -> torch.Tensor:
        """(K, nq) zeros except the env origins in the free joints' position columns (env frame → world)."""
        off = torch.zeros(len(env_ids), self.sim.model.nq, device=self.device)
        origins = self.sim.env_origins[env_ids].float()
        off[:, self.sim.free_pos_cols] = origins.repeat(1, len(self.sim.free_pos_cols) // 3)
        return off

    # ------------------------------------------------------------------------------------------------ actions
    def _pre_physics_step(self, actions: torch.Tensor) -> None:
        ac = self.cfg.action
        self._prev_actions = self._actions
        self._actions = actions.clamp(-1.0, 1.0)
        origins = self.sim.env_origins.float()
        pos, rot = self._tcp_pose()
        target_pos = (pos - origins + self._actions[:, :3] * self._pos_scale).clamp(self._bounds_lo, self._bounds_hi)
        r_rel = rot @ self._r_home.T
        yaw = torch.atan2(r_rel[:, 1, 0], r_rel[:, 0, 0])  # of the TCP about the world z axis, from the home yaw
        target_yaw = (yaw + self._actions[:, 3] * ac.yaw_scale_rad).clamp(-ac.yaw_limit_rad, ac.yaw_limit_rad)
        # An absolute pose command built from the current pose: Isaac Lab's relative-mode delta for the position, and
        # for the orientation the home orientation (pointing down) turned to the target yaw, so that a tilt the arm
        # picked up in contact is undone rather than kept.
        self._ik.set_command(torch.cat([target_pos + origins, quat_mul(_yaw_quat(target_yaw), self._q_home.expand(
            self.num_envs, 4))], dim=1))
        q = self.sim.qpos[:, self._arm_q].float()
        q_des = self._ik.compute(pos, quat_from_matrix(rot), self._arm_jacobian(), q)
        self._joint_targets = torch.max(torch.min(q_des, self._arm_range[:, 1]), self._arm_range[:, 0])

    def _apply_action(self) -> None:
        ctrl = self.sim.ctrl
        ctrl[:, self._arm_act] = self._joint_targets.to(ctrl.dtype)
        ctrl[:, self._grip_act] = self.cfg.gear_scene.grip_ctrl

    # ---------------------------------------------------------------------------------------------- task state
    def _compute_state(self) -> dict[str, torch.Tensor]:
        """The task quantities of the current state that dones, rewards and logs share (all (N,) or (N, 3))."""
        sim = self.sim
        gear_pos = sim.site_pos_w[:, self._gear_site].float()
        gear_quat = sim.body_quat_w[:, self._gear_body].float()
        seated_pos = sim.site_pos_w[:, self._seated_site].float()
        shaft_quat = sim.body_quat_w[:, self._base_body].float()
        tcp_pos = self._tcp_pose()[0]
        height, radial = axial_radial_error(gear_pos, seated_pos, shaft_quat)
        seated = gear_seated(gear_pos, gear_quat, seated_pos, shaft_quat, self.cfg.success)
        dropped = (gear_pos - tcp_pos).norm(dim=1) > self.cfg.terminations.drop_distance_m
        return {
            "keypoint_distance": keypoint_distance(gear_pos, gear_quat, seated_pos, shaft_quat, self._keypoints),
            "height_error": height, "xy_error": radial,
            "engaged": (radial < self.cfg.success.axis_tolerance_m) & (height < self._tip_above_seated),
            "seated": seated & ~dropped, "dropped": dropped,
        }

    # -------------------------------------------------------------------------------------------- observations
    def _get_observations(self) -> dict[str, torch.Tensor]:
        sim = self.sim
        origins = sim.env_origins.float()
        pos, rot = self._tcp_pose()
        jac = self._arm_jacobian()
        ee_vel = (jac @ sim.qvel[:, self._arm_dof].float().unsqueeze(-1)).squeeze(-1)
        wrench = torch.cat([sim.sensordata[:, self._force], sim.sensordata[:, self._torque]], dim=1).float()
        # A reset's observation: the sensors are computed by the physics step, so they still hold the last episode's
        # reading; the start's own (at rest, from the bank) replaces it.
        wrench = torch.where((self.episode_length_buf == 0).unsqueeze(1), self._start_wrench, wrench)
        shaft = sim.site_pos_w[:, self._tip_site].float() - origins
        shaft_est = shaft + self._estimate_error
        gear_pos = sim.site_pos_w[:, self._gear_site].float()
        terms = {
            "joint_pos": sim.qpos[:, self._joint_q].float(),
            "joint_vel": sim.qvel[:, self._joint_dof].float(),
            "ee_pos": pos - origins,
            "ee_rot": torch.cat([rot[:, :, 0], rot[:, :, 1]], dim=1),
            "ee_lin_vel": ee_vel[:, :3], "ee_ang_vel": ee_vel[:, 3:],
            "shaft_pos": shaft, "ee_pos_rel_shaft": pos - origins - shaft,
            "shaft_pos_est": shaft_est, "ee_pos_rel_shaft_est": pos - origins - shaft_est,
            "gear_pos_rel_seated": gear_pos - sim.site_pos_w[:, self._seated_site].float(),
            "gear_axis": sim.site_xmat_w[:, self._gear_site].float().view(-1, 3, 3)[:, :, 2],
            "gear_pos_rel_ee": gear_pos - pos,
            "prev_action": self._actions,
        }
        teacher = concat_terms({**terms, "wrist_wrench": wrench}, TEACHER_OBS_ORDER)
        noise = torch.randn(wrench.shape, generator=self.generator, device=self.device)
        noisy = wrench + self._wrench_noise_std * noise
        terms["contact_pos_rel_ee"] = self._locate_contact(noisy, pos)
        policy = concat_terms({**terms, "wrist_wrench": noisy}, POLICY_OBS_ORDER)
        return {"policy": policy, "teacher": teacher}

    def _locate_contact(self, noisy: torch.Tensor, tcp_pos: torch.Tensor) -> torch.Tensor:
        """The ``contact_pos_rel_ee`` term (N, 3): where the held gear touches something, from the noisy wrist wrench
        (N, 6: force; torque, sensor frame) and the TCP position (N, 3, world frame, m).

        Every reset tares the sensor (the start's wrench at rest plus noise of std noise/√``wrist_tare_samples``: the
        average of that many readings; the sensors are not recomputed between a reset and the next physics step, so
        the tare comes from the start bank); the tared reading, turned into the world frame, is the contact's wrench,
        and ``contact_point_on_plane`` cuts its line of action with the gear's bottom face (``_contact_depth`` below
        the TCP). Deployable: it needs only the sensor, the arm's kinematics and
        the grasp's geometry. Returns (x, y) of the contact point minus the TCP, world frame, m, clipped to ±3 cm
        (the gear's outer radius is 15 mm), and 1.0 while in contact; zeros otherwise.
        """
        nc = self.cfg.noise
        rot = self.sim.site_xmat_w[:, self._ft_site].float().view(-1, 3, 3)
        tared = noisy - self._wrench_tare
        force_w = (rot @ tared[:, :3].unsqueeze(-1)).squeeze(-1)
        torque_w = (rot @ tared[:, 3:].unsqueeze(-1)).squeeze(-1)
        sensor_pos = self.sim.site_pos_w[:, self._ft_site].float()
        point, in_contact = contact_point_on_plane(force_w, torque_w, sensor_pos, tcp_pos[:, 2] - self._contact_depth,
                                                   nc.contact_min_force_n)
        rel = (point[:, :2] - tcp_pos[:, :2]).clamp(-0.03, 0.03) * in_contact.unsqueeze(1)
        return torch.cat([rel, in_contact.float().unsqueeze(1)], dim=1)

    # -------------------------------------------------------------------------------------------------- rewards
    def _get_rewards(self) -> torch.Tensor:
        s, rc = self._state, self.cfg.rewards
        d = s["keypoint_distance"]
        terms = torch.stack([
            squashing_fn(d, *rc.kp_baseline_coef), squashing_fn(d, *rc.kp_coarse_coef),
            squashing_fn(d, *rc.kp_fine_coef), squashing_fn(s["xy_error"], *rc.xy_align_coef), s["engaged"].float(),
            s["seated"].float(),
            (self._actions - self._prev_actions).norm(dim=1), s["dropped"].float(),
        ], dim=1) * self._reward_weights
        self._episode_sums += terms
        return terms.sum(dim=1)

    # ---------------------------------------------------------------------------------------------------- dones
    def _get_dones(self) -> tuple[torch.Tensor, torch.Tensor]:
        self._state = s = self._compute_state()
        first = s["seated"] & (self._first_success_step < 0)
        self._first_success_step[first] = self.episode_length_buf[first]
        return s["dropped"].clone(), self.episode_length_buf >= self.max_episode_length

    # ---------------------------------------------------------------------------------------------------- reset
    def _reset_idx(self, env_ids: torch.Tensor) -> None:
        if self._state and self.episode_length_buf[env_ids].max() > 0:
            self._log_episodes(env_ids)
        super()._reset_idx(env_ids)
        k, dev, st = len(env_ids), self.device, self.cfg.gear_scene.start
        pick = torch.randint(len(self._bank["qpos"]), (k,), generator=self.generator, device=dev)
        qpos = self._bank["qpos"][pick].clone()
        gear_xy = qpos[:, self._gear_q[:2]]
        # The base goes under the gear: its shaft tip at the gear's xy minus the drawn offset (the tip's xy in the base
        # frame, zero for a centred shaft, turned by the base's yaw). A contact start's offset has its length drawn
        # from ``contact_xy_radius_m`` in a uniform direction.
        base_quat = _yaw_quat(self._uniform(st.base_yaw_rad, k))
        tip_xy = quat_apply(base_quat, self._tip_local.expand(k, 3))[:, :2]
        angle = self._uniform((-math.pi, math.pi), k)
        ring = self._uniform(st.contact_xy_radius_m, k).unsqueeze(1) * torch.stack([angle.cos(), angle.sin()], dim=1)
        offset = torch.where(self._bank["contact"][pick].unsqueeze(1), ring, self._uniform(st.gear_xy_m, k, 2))
        base_xy = gear_xy - offset - tip_xy
        qpos[:, self._base_q] = torch.cat([base_xy, torch.zeros(k, 1, device=dev), base_quat], dim=1)
        self.sim.write_state(env_ids, qpos + self._origin_offsets(env_ids), self._bank["qvel"][pick])
        self.sim.ctrl[env_ids] = self._bank["ctrl"][pick].to(self.sim.ctrl.dtype)
        self._joint_targets[env_ids] = self._bank["ctrl"][pick][:, self._arm_act]
        self._estimate_error[env_ids] = sample_estimate_error(k, self.cfg.noise.shaft_estimate_error_m,
                                                              self.generator, dev)
        self._actions[env_ids] = 0.0
        self._prev_actions[env_ids] = 0.0
        self._first_success_step[env_ids] = -1
        self._episode_sums[env_ids] = 0.0
        self._start_wrench[env_ids] = self._bank["wrench"][pick]
        extra = torch.randn(k, 6, generator=self.generator, device=dev)
        self._wrench_tare[env_ids] = self._start_wrench[env_ids] + self._wrench_noise_std * extra / math.sqrt(
            self.cfg.noise.wrist_tare_samples)

    def _uniform(self, bounds: tuple[float, float], *shape: int) -> torch.Tensor:
        """Samples ~ U(bounds) of the given shape from the env's generator."""
        u = torch.rand(*shape, generator=self.generator, device=self.device)
        return bounds[0] + (bounds[1] - bounds[0]) * u

    def _log_episodes(self, env_ids: torch.Tensor) -> None:
        """Put the metrics of the episodes ending in ``env_ids`` into ``extras["log"]`` and
        ``extras["episode_outcomes"]`` (the state is the episode's last)."""
        log, s = self.extras.setdefault("log", {}), self._state
        sums = (self._episode_sums[env_ids] / self.cfg.episode_length_s).mean(dim=0).tolist()
        log.update({f"Episode_Reward/{name}": v for name, v in zip(self._reward_names, sums)})
        dropped, success = s["dropped"][env_ids], s["seated"][env_ids]
        xy, height = s["xy_error"][env_ids], s["height_error"][env_ids]
        first = self._first_success_step[env_ids]
        self.extras["episode_outcomes"] = {
            "env_ids": env_ids, "success": success, "crash": dropped, "final_distance": xy,
            "time_to_success": torch.where(first >= 0, first.float() * self.step_dt, torch.nan)}
        log["Episode_Metric/success"] = success.float().mean().item()
        log["Episode_Metric/drop"] = dropped.float().mean().item()
        if not dropped.all():
            log["Episode_Metric/final_xy_error"] = xy[~dropped].mean().item()
            log["Episode_Metric/final_height_error"] = height[~dropped].abs().mean().item()
        if (first >= 0).any():
            log["Episode_Metric/time_to_success"] = (first[first >= 0].float() * self.step_dt).mean().item()
