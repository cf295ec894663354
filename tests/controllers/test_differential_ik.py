"""Differential IK: the step is the closed-form damped least-squares (or pseudo-inverse) solution, and iterating it
on real kinematics (MuJoCo C backend, ``tests/assets/arm.xml`` and the Panda-like 7-joint ``chain7.xml``) brings the
end-effector to the commanded pose."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest
import torch

from foundation.controllers import DifferentialIKController, DifferentialIKControllerCfg
from foundation.sim import make_backend
from foundation.utils.math import quat_error_magnitude, quat_from_matrix
from tests.conftest import ARM_XML, ASSETS_DIR

N = 4
ARM7_JOINTS = [f"joint{i}" for i in range(1, 8)]
#: A Panda-like ready pose (Menagerie's "home" keyframe), radians.
HOME7 = torch.tensor([0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785], dtype=torch.float64)


def ee_pose(sim, site: int) -> tuple[torch.Tensor, torch.Tensor]:
    return sim.site_pos_w[:, site].clone(), quat_from_matrix(sim.site_xmat_w[:, site].reshape(-1, 3, 3))


def iterate(sim, ik: DifferentialIKController, joints: list[str], site: int, iterations: int) -> list[float]:
    """Run ``iterations`` IK steps on the kinematics (qpos set to the targets); return the position error each time."""
    qcols, dcols = sim.joint_qpos_cols(joints), sim.joint_dof_cols(joints)
    errors = []
    for _ in range(iterations):
        pos, quat = ee_pose(sim, site)
        errors.append((ik.ee_pos_des - pos).norm(dim=-1).max().item())
        sim.qpos[:, qcols] = ik.compute(pos, quat, sim.site_jacobian(site)[:, :, dcols], sim.qpos[:, qcols])
        sim.kinematics()
    return errors


def chain7():
    sim = make_backend(mujoco.MjSpec.from_file(str(ASSETS_DIR / "chain7.xml")), N, "mujoco", env_spacing=2.0)
    offsets = torch.linspace(-0.3, 0.3, N, dtype=torch.float64).unsqueeze(1) * torch.tensor([1, -1, 1, 1, -1, 1, 1])
    sim.qpos[:, sim.joint_qpos_cols(ARM7_JOINTS)] = HOME7 + offsets  # four different, non-singular configurations
    sim.kinematics()
    return sim, sim.site_index("ee")


# ------------------------------------------------------------------------------------------------- the IK step
@pytest.mark.parametrize("command_type", ["position", "pose"])
def test_dls_step_is_the_closed_form_damped_least_squares_solution(command_type):
    gen = torch.Generator().manual_seed(0)
    lam = 0.05
    ik = DifferentialIKController(DifferentialIKControllerCfg(command_type, ik_params={"lambda_val": lam}), N)
    jac, q = torch.randn(N, 6, 7, generator=gen, dtype=torch.float64), torch.randn(N, 7, generator=gen).double()
    pos, quat = torch.randn(N, 3, generator=gen).double(), torch.nn.functional.normalize(torch.randn(N, 4).double())
    target_pos = pos + 0.01 * torch.randn(N, 3, generator=gen).double()
    if command_type == "position":
        ik.set_command(target_pos, ee_quat=quat)
        error, rows = (target_pos - pos).numpy(), 3
    else:
        target_quat = torch.nn.functional.normalize(quat + 0.05 * torch.randn(N, 4, generator=gen).double())
        ik.set_command(torch.cat([target_pos, target_quat], dim=1))
        rotvec = np.zeros((N, 3))
        for i in range(N):  # MuJoCo's world-frame rotation from quat to target_quat
            local = np.zeros(3)
            mujoco.mju_subQuat(local, target_quat[i].numpy(), quat[i].numpy())
            mujoco.mju_rotVecQuat(rotvec[i], local, quat[i].numpy())
        error, rows = np.concatenate([(target_pos - pos).numpy(), rotvec], axis=1), 6
    out = ik.compute(pos, quat, jac, q)
    for i in range(N):
        J = jac[i, :rows].numpy()
        expected = q[i].numpy() + J.T @ np.linalg.solve(J @ J.T + lam**2 * np.eye(rows), error[i])
        np.testing.assert_allclose(out[i].numpy(), expected, atol=1e-10, rtol=0)


def test_pinv_step_is_the_scaled_pseudo_inverse_solution():
    gen = torch.Generator().manual_seed(1)
    ik = DifferentialIKController(DifferentialIKControllerCfg("position", True, "pinv", {"k_val": 0.5}), N)
    jac, q = torch.randn(N, 6, 3, generator=gen, dtype=torch.float64), torch.randn(N, 3, generator=gen).double()
    pos, quat = torch.randn(N, 3, generator=gen).double(), torch.tensor([[1.0, 0, 0, 0]]).double().repeat(N, 1)
    delta = 0.01 * torch.randn(N, 3, generator=gen).double()
    ik.set_command(delta, pos, quat)
    out = ik.compute(pos, quat, jac, q)
    for i in range(N):
        expected = q[i].numpy() + 0.5 * np.linalg.pinv(jac[i, :3].numpy()) @ delta[i].numpy()
        np.testing.assert_allclose(out[i].numpy(), expected, atol=1e-10, rtol=0)


# ----------------------------------------------------------------------------------- closing the loop on an arm
def test_a_relative_position_command_moves_the_3_joint_arm_by_the_delta():
    sim = make_backend(mujoco.MjSpec.from_file(str(ARM_XML)), N, "mujoco", env_spacing=2.0)
    # Four configurations from which the commanded targets stay within reach (< 0.45 m from the shoulder).
    sim.qpos[:, :3] = torch.tensor([[0.2, -0.4, 0.8], [-0.5, -0.2, 0.6], [1.0, -0.6, 1.0], [0.0, -0.3, 1.2]]).double()
    sim.kinematics()
    site = sim.site_index("ee")
    start, quat = ee_pose(sim, site)
    delta = torch.tensor([[0.02, -0.01, 0.015], [-0.01, 0.02, 0.0], [0.0, 0.0, -0.02], [0.015, 0.015, 0.01]]).double()
    ik = DifferentialIKController(DifferentialIKControllerCfg("position", use_relative_mode=True), N)
    ik.set_command(delta, start, quat)
    errors = iterate(sim, ik, ["j1", "j2", "j3"], site, 10)
    moved = ee_pose(sim, site)[0] - start
    # 3 joints, 3-D position: an exact solution exists; DLS with λ = 0.01 converges to it within a few steps.
    torch.testing.assert_close(moved, delta, atol=1e-6, rtol=0)
    assert errors[0] > 0.015 and errors[2] < 0.01 * errors[0]  # converges fast: Newton-like steps


def test_a_relative_pose_command_moves_the_7_joint_arm_to_the_displaced_pose():
    sim, site = chain7()
    start_pos, start_quat = ee_pose(sim, site)
    delta = torch.tensor([0.03, -0.02, 0.025, 0.1, -0.05, 0.08], dtype=torch.float64).repeat(N, 1)
    delta[1] *= -1
    ik = DifferentialIKController(DifferentialIKControllerCfg("pose", use_relative_mode=True), N)
    assert ik.action_dim == 6
    ik.set_command(delta, start_pos, start_quat)
    iterate(sim, ik, ARM7_JOINTS, site, 15)
    pos, quat = ee_pose(sim, site)
    torch.testing.assert_close(pos - start_pos, delta[:, :3], atol=1e-6, rtol=0)
    # The reached orientation is the start rotated by the rotation vector (world frame), computed with MuJoCo.
    for i in range(N):
        rot, expected = np.zeros(4), np.zeros(4)
        rotvec = delta[i, 3:].numpy()
        mujoco.mju_axisAngle2Quat(rot, rotvec / np.linalg.norm(rotvec), np.linalg.norm(rotvec))
        mujoco.mju_mulQuat(expected, rot, start_quat[i].numpy())
        assert quat_error_magnitude(quat[i], torch.from_numpy(expected)).item() < 1e-6


def test_an_absolute_pose_command_reaches_a_reachable_pose():
    sim, site = chain7()
    goal_q = HOME7 + torch.tensor([0.2, 0.1, -0.1, 0.2, 0.1, -0.15, 0.3], dtype=torch.float64)
    probe, _ = chain7()
    probe.qpos[:, probe.joint_qpos_cols(ARM7_JOINTS)] = goal_q
    probe.kinematics()
    goal_pos, goal_quat = ee_pose(probe, site)
    ik = DifferentialIKController(DifferentialIKControllerCfg("pose"), N)
    assert ik.action_dim == 7
    ik.set_command(torch.cat([goal_pos, goal_quat], dim=1))
    errors = iterate(sim, ik, ARM7_JOINTS, site, 30)
    pos, quat = ee_pose(sim, site)
    assert errors[0] > 0.05  # the goal is well away from every start
    torch.testing.assert_close(pos, goal_pos, atol=1e-6, rtol=0)
    assert quat_error_magnitude(quat, goal_quat).max().item() < 1e-6


# ------------------------------------------------------------------------------------------------------ errors
def test_bad_configs_commands_and_shapes_are_errors():
    with pytest.raises(ValueError, match="command_type"):
        DifferentialIKControllerCfg("orientation")
    with pytest.raises(ValueError, match="ik_method"):
        DifferentialIKControllerCfg(ik_method="svd")
    with pytest.raises(ValueError, match=r"\['k_val'\] are not parameters of ik_method 'dls'"):
        DifferentialIKControllerCfg(ik_params={"k_val": 1.0})
    assert DifferentialIKControllerCfg().ik_params == {"lambda_val": 0.01}
    ik = DifferentialIKController(DifferentialIKControllerCfg("position"), N)
    with pytest.raises(ValueError, match=r"shape \(4, 3\)"):
        ik.set_command(torch.zeros(N, 7))
    with pytest.raises(ValueError, match="ee_quat"):
        ik.set_command(torch.zeros(N, 3))
    ik.set_command(torch.zeros(N, 3), ee_quat=torch.tensor([[1.0, 0, 0, 0]]).repeat(N, 1))
    with pytest.raises(ValueError, match="compute expects"):
        ik.compute(torch.zeros(N, 3), torch.zeros(N, 4), torch.zeros(N, 3, 7), torch.zeros(N, 7))
