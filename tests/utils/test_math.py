"""Rotation and frame helpers of ``foundation.utils.math`` against MuJoCo's ``mju_*`` functions on random inputs."""

from __future__ import annotations

import math

import mujoco
import numpy as np
import pytest
import torch

from foundation.utils import math as fm

K = 64  # random samples per test


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def random_quats(rng: np.random.Generator, k: int = K) -> np.ndarray:
    """(k, 4) uniformly random unit quaternions, both signs of w."""
    q = rng.normal(size=(k, 4))
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def mju(fn, shape, *args) -> np.ndarray:
    """Apply a MuJoCo ``mju_*`` function row by row: ``fn(res, *row_args)``, results stacked."""
    out = []
    for row in zip(*args):
        res = np.zeros(shape)
        fn(res, *[np.ascontiguousarray(a, dtype=np.float64) if isinstance(a, np.ndarray) else a for a in row])
        out.append(res)
    return np.stack(out)


def t(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(x, dtype=np.float64))


def assert_same_rotation(q1: torch.Tensor, q2: np.ndarray, atol: float = 1e-12) -> None:
    """q and -q are the same rotation."""
    q2 = t(q2)
    err = torch.minimum((q1 - q2).abs().amax(dim=-1), (q1 + q2).abs().amax(dim=-1))
    assert err.max() < atol, err.max()


def test_quat_mul_conjugate_and_apply_match_mujoco(rng):
    q1, q2, v = random_quats(rng), random_quats(rng), rng.normal(size=(K, 3))
    np.testing.assert_allclose(fm.quat_mul(t(q1), t(q2)), mju(mujoco.mju_mulQuat, 4, q1, q2), atol=1e-12)
    np.testing.assert_allclose(fm.quat_conjugate(t(q1)), mju(mujoco.mju_negQuat, 4, q1), atol=0)
    np.testing.assert_allclose(fm.quat_apply(t(q1), t(v)), mju(mujoco.mju_rotVecQuat, 3, v, q1), atol=1e-12)
    np.testing.assert_allclose(fm.quat_apply_inverse(t(q1), fm.quat_apply(t(q1), t(v))), v, atol=1e-12)


def test_quat_inv_inverts_non_unit_quaternions(rng):
    q = t(random_quats(rng)) * t(rng.uniform(0.5, 2.0, size=(K, 1)))
    identity = torch.tensor([1.0, 0, 0, 0], dtype=torch.float64).expand(K, 4)
    torch.testing.assert_close(fm.quat_mul(q, fm.quat_inv(q)), identity, atol=1e-12, rtol=0)


def test_angle_axis_conversions_match_mujoco(rng):
    axis, angle = rng.normal(size=(K, 3)), rng.uniform(-math.pi, math.pi, size=K)
    unit = axis / np.linalg.norm(axis, axis=1, keepdims=True)
    np.testing.assert_allclose(fm.quat_from_angle_axis(t(angle), t(axis)),
                               mju(mujoco.mju_axisAngle2Quat, 4, unit, angle), atol=1e-12)
    q = random_quats(rng)
    np.testing.assert_allclose(fm.axis_angle_from_quat(t(q)), mju(mujoco.mju_quat2Vel, 3, q, [1.0] * K), atol=1e-10)
    # Round trip, and tiny angles through the series branch.
    rotvec = fm.axis_angle_from_quat(fm.quat_from_angle_axis(t(angle), t(axis)))
    torch.testing.assert_close(rotvec, t(unit * angle[:, None]), atol=1e-12, rtol=0)
    tiny = t(unit[:4] * 1e-8)
    q_tiny = fm.quat_from_angle_axis(tiny.norm(dim=-1), tiny)
    torch.testing.assert_close(fm.axis_angle_from_quat(q_tiny), tiny, atol=1e-20, rtol=1e-9)
    assert torch.equal(fm.axis_angle_from_quat(t([[1.0, 0, 0, 0]])), t([[0.0, 0, 0]]))


def test_quat_box_minus_is_mujocos_sub_quat_in_the_world_frame(rng):
    q1, q2 = random_quats(rng), random_quats(rng)
    local = mju(mujoco.mju_subQuat, 3, q1, q2)  # q2 ⊗ exp(local) = q1
    np.testing.assert_allclose(fm.quat_box_minus(t(q1), t(q2)), fm.quat_apply(t(q2), t(local)), atol=1e-10)
    np.testing.assert_allclose(fm.quat_error_magnitude(t(q1), t(q2)), np.linalg.norm(local, axis=1), atol=1e-10)
    # Applying the difference to q2 gives q1.
    d = fm.quat_box_minus(t(q1), t(q2))
    assert_same_rotation(fm.quat_mul(fm.quat_from_angle_axis(d.norm(dim=-1), d), t(q2)), q1, atol=1e-10)


def test_matrix_quat_conversions_match_mujoco(rng):
    q = random_quats(rng)
    mats = mju(mujoco.mju_quat2Mat, 9, q).reshape(K, 3, 3)
    np.testing.assert_allclose(fm.matrix_from_quat(t(q)), mats, atol=1e-12)
    assert_same_rotation(fm.quat_from_matrix(t(mats)), mju(mujoco.mju_mat2Quat, 4, mats.reshape(K, 9)))
    # Every branch: rotations by π about x, y, z (w = 0) and near-identity.
    special = t([[0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [1, 1e-9, 0, 0]])
    special = special / special.norm(dim=-1, keepdim=True)
    assert_same_rotation(fm.quat_from_matrix(fm.matrix_from_quat(special)), special.numpy())
    assert (fm.quat_from_matrix(t(mats))[:, 0] >= 0).all()


def test_frame_transforms_match_mujocos_poses(rng):
    t01, q01, t12, q12 = rng.normal(size=(K, 3)), random_quats(rng), rng.normal(size=(K, 3)), random_quats(rng)
    pos, quat = [], []
    for a, b, c, d in zip(t01, q01, t12, q12):
        p, q = np.zeros(3), np.zeros(4)
        mujoco.mju_mulPose(p, q, a, b, c, d)
        pos.append(p)
        quat.append(q)
    t02, q02 = fm.combine_frame_transforms(t(t01), t(q01), t(t12), t(q12))
    np.testing.assert_allclose(t02, np.stack(pos), atol=1e-12)
    np.testing.assert_allclose(q02, np.stack(quat), atol=1e-12)
    # Subtracting T01 from T02 gives back T12 (MuJoCo: negPose then mulPose).
    back_t, back_q = fm.subtract_frame_transforms(t(t01), t(q01), t02, q02)
    torch.testing.assert_close(back_t, t(t12), atol=1e-12, rtol=0)
    assert_same_rotation(back_q, q12)
    p_inv, q_inv = np.zeros(3), np.zeros(4)
    mujoco.mju_negPose(p_inv, q_inv, t01[0], q01[0])
    inv_t, inv_q = fm.subtract_frame_transforms(t(t01[:1]), t(q01[:1]))
    np.testing.assert_allclose(inv_t[0], p_inv, atol=1e-12)
    assert_same_rotation(inv_q, q_inv[None])
    same_t, same_q = fm.combine_frame_transforms(t(t01), t(q01))
    assert torch.equal(same_t, t(t01)) and torch.equal(same_q, t(q01))


def test_compute_pose_error_is_the_position_and_rotation_taking_the_current_pose_to_the_target(rng):
    t1, q1, t2, q2 = rng.normal(size=(K, 3)), random_quats(rng), rng.normal(size=(K, 3)), random_quats(rng)
    pos_err, rot_err = fm.compute_pose_error(t(t1), t(q1), t(t2), t(q2))
    torch.testing.assert_close(pos_err, t(t2 - t1), atol=0, rtol=0)
    torch.testing.assert_close(rot_err, fm.quat_box_minus(t(q2), t(q1)), atol=1e-12, rtol=0)
    _, quat_err = fm.compute_pose_error(t(t1), t(q1), t(t2), t(q2), rot_error_type="quat")
    assert_same_rotation(fm.quat_mul(quat_err, t(q1)), q2, atol=1e-12)
    with pytest.raises(ValueError, match="rot_error_type"):
        fm.compute_pose_error(t(t1), t(q1), t(t2), t(q2), rot_error_type="euler")


def test_yaw_quat_keeps_the_heading_and_drops_roll_and_pitch(rng):
    roll, pitch, yaw = (t(rng.uniform(-1.2, 1.2, size=K)) for _ in range(3))
    q = fm.quat_from_euler_xyz(roll, pitch, yaw)
    expected = fm.quat_from_euler_xyz(torch.zeros_like(yaw), torch.zeros_like(yaw), yaw)
    torch.testing.assert_close(fm.yaw_quat(q), expected, atol=1e-12, rtol=0)


def test_quat_from_euler_xyz_is_yaw_pitch_roll_composed(rng):
    roll, pitch, yaw = rng.uniform(-3, 3, size=(3, K))
    x, y, z = (np.eye(3)[i] for i in range(3))
    composed = [mju(mujoco.mju_axisAngle2Quat, 4, [axis] * K, ang) for axis, ang in ((z, yaw), (y, pitch), (x, roll))]
    expected = fm.quat_mul(fm.quat_mul(t(composed[0]), t(composed[1])), t(composed[2]))
    torch.testing.assert_close(fm.quat_from_euler_xyz(t(roll), t(pitch), t(yaw)), expected, atol=1e-12, rtol=0)
