"""Test harness of the gear scene on raw MuJoCo (one ``MjData``): grasped start, a DLS IK step, scripted episodes.

This is the physics tests' and measurement scripts' harness, not the task env: it steps a single ``mujoco.MjData``
of ``scene.xml`` with numpy. Its IK step (:func:`dls_ik_step`) is the env's damped least squares
(``foundation.controllers.differential_ik.dls_delta_joint_pos``) applied to one numpy state. Frames: world;
quaternions (w, x, y, z); metres, radians, seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np
import torch

from foundation.controllers.differential_ik import dls_delta_joint_pos
from foundation.tasks.gear_assembly.scene_cfg import GearSceneCfg
from foundation.tasks.gear_assembly.scripted import ScriptedInsertion, ScriptedInsertionCfg
from foundation.tasks.gear_assembly.success import GearSuccessCfg, gear_seated

#: Control period of the scripted episodes, s: 30 Hz, Isaac Lab's gear-assembly policy rate.
CONTROL_DT_S = 1.0 / 30.0
#: The fingers are placed this far inside the gear's rim at reset, so the grip pushes from the first step, m.
GRIP_PRELOAD_M = 0.0002
#: Damping lambda of the DLS IK step that drives the arm (Isaac Lab's DifferentialIKController default is 0.01; 0.05
#: was chosen, not tuned: it keeps the joint steps of a 10 mm target step small). The reset's IK uses 0.01.
IK_DAMPING = 0.05


def dls_ik_step(jacobian: np.ndarray, pos_error: np.ndarray, rot_error: np.ndarray,
                damping: float = IK_DAMPING) -> np.ndarray:
    """Joint step (nq_arm,) of damped least squares (:func:`foundation.controllers.differential_ik.dls_delta_joint_pos`,
    the env's IK) for one numpy state.

    Args:
        jacobian: (6, nq_arm) site Jacobian, rows [translation; rotation], world frame.
        pos_error: (3,) target minus current position, world frame, m.
        rot_error: (3,) rotation vector (axis * angle) from current to target orientation, world frame, rad.
        damping: lambda.
    """
    err = torch.from_numpy(np.concatenate([pos_error, rot_error]))[None]
    return dls_delta_joint_pos(torch.from_numpy(jacobian)[None], err, damping)[0].numpy()


def rotation_error(target_quat: np.ndarray, quat: np.ndarray) -> np.ndarray:
    """Rotation vector (3,) of ``target * quat^-1`` (world frame), rad."""
    inv, diff, vel = np.zeros(4), np.zeros(4), np.zeros(3)
    mujoco.mju_negQuat(inv, quat)
    mujoco.mju_mulQuat(diff, target_quat, inv)
    mujoco.mju_quat2Vel(vel, diff, 1.0)
    return vel


def yaw_quat(yaw: float) -> np.ndarray:
    """(4,) quaternion (w, x, y, z) of a rotation by ``yaw`` rad about the world z axis."""
    return np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])


@dataclass
class EpisodeResult:
    """Outcome of one scripted episode."""

    seated: bool
    max_penetration_m: float
    """Deepest gear-base contact over the episode (minus the contact ``dist``), m; 0 if never deeper than touching."""
    max_slip_m: float
    """Largest displacement of the gear centre in the TCP frame from its position after the grasp settled, m."""
    sim_time_s: float
    nonfinite: bool


class GearScene:
    """One ``MjData`` of the gear scene with the arm driven by position targets from :func:`dls_ik_step`.

    Args:
        cfg: Names and start randomisation; defaults to :class:`GearSceneCfg`.
        model: A compiled model of the scene to use instead of loading ``cfg.scene_xml`` (e.g. with changed options).
    """

    def __init__(self, cfg: GearSceneCfg | None = None, model: mujoco.MjModel | None = None) -> None:
        self.cfg = cfg = cfg or GearSceneCfg()
        self.model = m = model if model is not None else mujoco.MjModel.from_xml_path(cfg.scene_xml)
        self.data = mujoco.MjData(m)
        self._scratch = mujoco.MjData(m)
        jnt = [m.joint(n) for n in cfg.arm_joints]
        self.arm_qadr = np.array([j.qposadr[0] for j in jnt])
        self.arm_dadr = np.array([j.dofadr[0] for j in jnt])
        self.arm_range = np.array([j.range for j in jnt])
        self.finger_qadr = np.array([m.joint(n).qposadr[0] for n in cfg.finger_joints])
        self.arm_act = np.array([m.actuator(n).id for n in cfg.arm_actuators])
        self.grip_act = m.actuator(cfg.gripper_actuator).id
        self.tcp = m.site(cfg.tcp_site).id
        self.gear_site = m.site(cfg.gear_site).id
        self.tip_site = m.site(cfg.shaft_tip_site).id
        self.seated_site = m.site(cfg.seated_site).id
        self.gear_body = m.body(cfg.gear_body).id
        self.base_body = m.body(cfg.base_body).id
        self.gear_qadr = m.joint(cfg.gear_joint).qposadr[0]
        self.base_qadr = m.joint(cfg.base_joint).qposadr[0]
        self.tooth_geoms = [g for g in range(m.ngeom) if m.geom(g).name.startswith(cfg.gear_tooth_prefix)]
        tooth = self.tooth_geoms[0]
        self.gear_radius_m = float(np.linalg.norm(m.geom_pos[tooth][:2]) + m.geom_size[tooth][0])
        self.gear_half_thickness_m = float(m.geom_size[tooth][0] + m.geom_size[tooth][1])
        finger_bodies = {m.joint(n).bodyid[0] for n in cfg.finger_joints}
        self.pad_geoms = [g for g in range(m.ngeom) if m.geom_bodyid[g] in finger_bodies
                          and (m.geom_contype[g] & m.geom_conaffinity[tooth])]
        self.target_quat = np.array([1.0, 0, 0, 0])
        self._jac = np.zeros((6, m.nv))

    # ------------------------------------------------------------------------------------------------ kinematics
    def site_pose(self, site: int, data: mujoco.MjData | None = None) -> tuple[np.ndarray, np.ndarray]:
        """World position (3,) and quaternion (4,) of a site."""
        d = self.data if data is None else data
        q = np.zeros(4)
        mujoco.mju_mat2Quat(q, d.site_xmat[site])
        return d.site_xpos[site].copy(), q

    def site_jacobian(self, site: int, data: mujoco.MjData | None = None) -> np.ndarray:
        """(6, 7) Jacobian of a site's [translation; rotation] w.r.t. the arm joints, world frame."""
        d = self.data if data is None else data
        mujoco.mj_jacSite(self.model, d, self._jac[:3], self._jac[3:], site)
        return self._jac[:, self.arm_dadr].copy()

    def solve_ik(self, pos: np.ndarray, quat: np.ndarray, iters: int = 200, tol_m: float = 1e-5) -> np.ndarray:
        """Arm joint positions (7,) putting the TCP at ``pos``/``quat``, from the home pose (kinematics only).

        Raises:
            RuntimeError: if it does not converge to ``tol_m`` (and 1e-3 rad).
        """
        m, d = self.model, self._scratch
        d.qpos[:] = self.data.qpos
        d.qpos[self.arm_qadr] = self.cfg.arm_home_qpos
        for _ in range(iters):
            mujoco.mj_kinematics(m, d)
            mujoco.mj_comPos(m, d)
            p, q = self.site_pose(self.tcp, d)
            ep, er = pos - p, rotation_error(quat, q)
            if np.linalg.norm(ep) < tol_m and np.linalg.norm(er) < 1e-3:
                return d.qpos[self.arm_qadr].copy()
            d.qpos[self.arm_qadr] += dls_ik_step(self.site_jacobian(self.tcp, d), ep, er, damping=0.01)
            d.qpos[self.arm_qadr] = np.clip(d.qpos[self.arm_qadr], *self.arm_range.T)
        raise RuntimeError(f"IK did not converge: position error {np.linalg.norm(ep):.2e} m, rotation {np.linalg.norm(er):.2e} rad.")

    # ---------------------------------------------------------------------------------------------------- reset
    def home_tcp_quat(self) -> np.ndarray:
        """TCP orientation at the home pose: the gripper pointing down (the yaw reference of the start)."""
        d = self._scratch
        d.qpos[:] = 0
        d.qpos[self.arm_qadr] = self.cfg.arm_home_qpos
        mujoco.mj_kinematics(self.model, d)
        return self.site_pose(self.tcp, d)[1]

    def reset(self, rng: np.random.Generator, contact: bool = False) -> None:
        """New episode: random base pose, gear grasped at a random offset above the shaft, grip settled.

        The arm is put by IK where the TCP is at the gear centre, the gripper pointing down with a random yaw; the
        gear is placed in the grip (:meth:`_place_gear_in_grip`), and the fingers close on it under the grip command
        for ``cfg.settle_s`` with the arm holding its pose. No weld: the gear is held by friction only. With
        ``contact``, the gear's bottom face is ``start.contact_height_m`` above the shaft tip instead of
        ``start.gear_height_m`` (a contact start; the task places the shaft under it).
        """
        m, d, s = self.model, self.data, self.cfg.start
        mujoco.mj_resetData(m, d)
        u = lambda r: rng.uniform(*r)  # noqa: E731
        d.qpos[self.base_qadr:self.base_qadr + 7] = [u(s.base_x_m), u(s.base_y_m), 0.0, *yaw_quat(u(s.base_yaw_rad))]
        mujoco.mj_kinematics(m, d)
        tip = d.site_xpos[self.tip_site].copy()
        gear_pos = tip + np.array([u(s.gear_xy_m), u(s.gear_xy_m), u(s.contact_height_m if contact else s.gear_height_m)
                                    + self.gear_half_thickness_m])
        quat = np.zeros(4)
        mujoco.mju_mulQuat(quat, yaw_quat(u(s.hand_yaw_rad)), self.home_tcp_quat())
        self.target_quat = quat
        d.qpos[self.arm_qadr] = self.solve_ik(gear_pos, quat)
        self._place_gear_in_grip(quat)
        d.ctrl[self.arm_act] = d.qpos[self.arm_qadr]
        d.ctrl[self.grip_act] = self.cfg.grip_ctrl
        mujoco.mj_forward(m, d)
        self.step(int(round(self.cfg.settle_s / m.opt.timestep)))

    def _place_gear_in_grip(self, tcp_quat: np.ndarray) -> None:
        """Put the gear upright at the TCP and the fingertip pads ``GRIP_PRELOAD_M`` into its teeth (``qpos`` only).

        The gear is turned so that the hand's closing axis (TCP y) points at a tooth: that tooth's tip falls into the
        gap between a finger's pads, whose upper and lower pairs rest on the two teeth beside it, ~5 mm either side of
        the axis (a wide base against the gear turning in the grip). The finger opening comes from distance queries
        (the pads touch the round teeth off their apex line).
        """
        m, d = self.model, self.data
        gear_quat, hand_y, gear_inv = np.zeros(4), np.zeros(3), np.zeros(4)
        mujoco.mju_mulQuat(gear_quat, tcp_quat, np.array([0.0, 1.0, 0.0, 0.0]))  # upright: the TCP's z points down
        mujoco.mju_rotVecQuat(hand_y, np.array([0.0, 1.0, 0.0]), tcp_quat)
        mujoco.mju_negQuat(gear_inv, gear_quat)
        mujoco.mju_rotVecQuat(hand_y, hand_y, gear_inv)  # the closing axis in the gear frame
        mujoco.mju_mulQuat(gear_quat, gear_quat.copy(), yaw_quat(np.arctan2(hand_y[1], hand_y[0])))
        d.qpos[self.finger_qadr] = self.gear_radius_m
        for i in range(3):
            mujoco.mj_kinematics(m, d)
            d.qpos[self.gear_qadr:self.gear_qadr + 7] = [*d.site_xpos[self.tcp], *gear_quat]
            mujoco.mj_kinematics(m, d)
            gap = min(mujoco.mj_geomDistance(m, d, t, g, 0.01, None) for t in self.tooth_geoms for g in self.pad_geoms)
            d.qpos[self.finger_qadr] -= gap + (GRIP_PRELOAD_M if i == 2 else 0.0)
        mujoco.mj_kinematics(m, d)
        d.qpos[self.gear_qadr:self.gear_qadr + 7] = [*d.site_xpos[self.tcp], *gear_quat]

    # ----------------------------------------------------------------------------------------------- stepping
    def step(self, n: int = 1) -> None:
        """Advance the physics ``n`` steps of ``model.opt.timestep``."""
        mujoco.mj_step(self.model, self.data, nstep=n)

    def ik_control(self, target_pos: np.ndarray, target_quat: np.ndarray | None = None) -> None:
        """Set the arm's position targets to the current joint positions plus one DLS step towards the target."""
        d = self.data
        p, q = self.site_pose(self.tcp)
        dq = dls_ik_step(self.site_jacobian(self.tcp), target_pos - p,
                         rotation_error(self.target_quat if target_quat is None else target_quat, q))
        d.ctrl[self.arm_act] = d.qpos[self.arm_qadr] + dq

    def gear_in_tcp(self) -> np.ndarray:
        """Gear centre in the TCP frame (3,), m."""
        d = self.data
        return d.site_xmat[self.tcp].reshape(3, 3).T @ (d.site_xpos[self.gear_site] - d.site_xpos[self.tcp])

    def penetration_m(self) -> float:
        """Deepest current contact between a gear geom and a gear-base geom (minus ``dist``), m; 0 if none."""
        d, m = self.data, self.model
        if d.ncon == 0:
            return 0.0
        b1 = m.geom_bodyid[d.contact.geom1[: d.ncon]]
        b2 = m.geom_bodyid[d.contact.geom2[: d.ncon]]
        mask = ((b1 == self.gear_body) & (b2 == self.base_body)) | ((b2 == self.gear_body) & (b1 == self.base_body))
        return float(max(0.0, -d.contact.dist[: d.ncon][mask].min())) if mask.any() else 0.0

    def seated(self) -> bool:
        """The success predicate (:func:`gear_seated`) on the current state."""
        d = self.data
        gp, gq = self.site_pose(self.gear_site)
        sp, sq = self.site_pose(self.seated_site)
        t = lambda a: torch.as_tensor(a, dtype=torch.float64)[None]  # noqa: E731
        return bool(gear_seated(t(gp), t(gq), t(sp), t(sq), GearSuccessCfg(gear_half_thickness_m=self.gear_half_thickness_m))[0])


def run_scripted_episode(scene: GearScene, rng: np.random.Generator, aim_offset_m: float = 0.0,
                         controller_cfg: ScriptedInsertionCfg | None = None, episode_s: float = 6.0,
                         control_dt_s: float = CONTROL_DT_S, estimate_error_m: float = 0.0) -> EpisodeResult:
    """Reset ``scene`` and run the scripted insertion for ``episode_s``, one IK step every ``control_dt_s``.

    Args:
        aim_offset_m: The controller's shaft estimate is shifted this far off the true axis, perpendicular to it, in a
            random direction (0: exact shaft pose).
        estimate_error_m: Plus an error drawn once per episode, uniform in +-this per horizontal axis (Isaac Lab's
            gear task draws its shaft-position noise this way).

    Returns:
        :class:`EpisodeResult`; ``seated`` is the success predicate at the end of the episode.
    """
    scene.reset(rng)
    d = scene.data
    ctrl = ScriptedInsertion(1, controller_cfg, device="cpu")
    angle = rng.uniform(0, 2 * np.pi)
    offset = aim_offset_m * np.array([np.cos(angle), np.sin(angle), 0.0])
    offset[:2] += rng.uniform(-estimate_error_m, estimate_error_m, 2)
    tip = d.site_xpos[scene.tip_site] + offset
    seated_pos = d.site_xpos[scene.seated_site] + offset
    t = lambda a: torch.as_tensor(a, dtype=torch.float64)[None]  # noqa: E731
    slip0 = scene.gear_in_tcp()
    max_pen = max_slip = 0.0
    decimation = max(1, int(round(control_dt_s / scene.model.opt.timestep)))
    steps = int(round(episode_s / (scene.model.opt.timestep * decimation)))
    for _ in range(steps):
        target = ctrl.compute(t(d.site_xpos[scene.tcp]), t(tip), t(seated_pos))[0].numpy()
        scene.ik_control(target)
        for _ in range(decimation):
            scene.step()
            max_pen = max(max_pen, scene.penetration_m())
        if not np.isfinite(d.qpos).all():
            return EpisodeResult(False, max_pen, max_slip, d.time, True)
        max_slip = max(max_slip, float(np.linalg.norm(scene.gear_in_tcp() - slip0)))
    return EpisodeResult(scene.seated(), max_pen, max_slip, d.time, False)
