"""Batched rotation and frame helpers (torch), named and defined as Isaac Lab's ``isaaclab.utils.math``.

Quaternions are (w, x, y, z), MuJoCo's and Isaac Lab's order, and unit unless said otherwise; every function takes
any leading batch shape (``...``). A quaternion ``q_ab`` and position ``t_ab`` give the pose of frame b in frame a:
``v_a = quat_apply(q_ab, v_b) + t_ab``. Each function is tested against MuJoCo's ``mju_*`` counterpart named in its
docstring (``tests/utils/test_math.py``).
"""

from __future__ import annotations

import torch


def quat_mul(q1: torch.Tensor, q2: torch.Tensor) -> torch.Tensor:
    """Hamilton product ``q1 ⊗ q2`` (..., 4): the rotation q2 followed by q1 (``mju_mulQuat``)."""
    w1, x1, y1, z1 = q1.unbind(-1)
    w2, x2, y2, z2 = q2.unbind(-1)
    return torch.stack([
        w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
        w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
        w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
        w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
    ], dim=-1)


def quat_conjugate(q: torch.Tensor) -> torch.Tensor:
    """Conjugate (w, -x, -y, -z) (..., 4): the inverse rotation of a unit quaternion (``mju_negQuat``)."""
    return torch.cat([q[..., :1], -q[..., 1:]], dim=-1)


def quat_inv(q: torch.Tensor, eps: float = 1e-9) -> torch.Tensor:
    """Inverse ``conj(q) / |q|²`` (..., 4) of any non-zero quaternion (``|q|²`` clamped below at ``eps``)."""
    return quat_conjugate(q) / q.pow(2).sum(dim=-1, keepdim=True).clamp(min=eps)


def quat_unique(q: torch.Tensor) -> torch.Tensor:
    """The same rotation with a non-negative real part (q and -q are the same rotation) (..., 4)."""
    return torch.where(q[..., :1] < 0, -q, q)


def normalize(x: torch.Tensor, eps: float = 1e-9) -> torch.Tensor:
    """``x / |x|`` along the last dimension (norm clamped below at ``eps``)."""
    return x / x.norm(dim=-1, keepdim=True).clamp(min=eps)


def quat_apply(quat: torch.Tensor, vec: torch.Tensor) -> torch.Tensor:
    """Rotate ``vec`` (..., 3) by ``quat`` (..., 4): ``q v q*`` (``mju_rotVecQuat``)."""
    xyz = quat[..., 1:]
    t = 2.0 * torch.linalg.cross(xyz, vec, dim=-1)
    return vec + quat[..., :1] * t + torch.linalg.cross(xyz, t, dim=-1)


def quat_apply_inverse(quat: torch.Tensor, vec: torch.Tensor) -> torch.Tensor:
    """Rotate ``vec`` (..., 3) by the inverse of ``quat`` (..., 4), e.g. a world vector into the body frame."""
    return quat_apply(quat_conjugate(quat), vec)


def quat_from_angle_axis(angle: torch.Tensor, axis: torch.Tensor) -> torch.Tensor:
    """Quaternion (..., 4) of a rotation by ``angle`` (..., radians) about ``axis`` (..., 3; normalised here)
    (``mju_axisAngle2Quat``)."""
    half = (angle / 2).unsqueeze(-1)
    return torch.cat([torch.cos(half), normalize(axis) * torch.sin(half)], dim=-1)


def axis_angle_from_quat(quat: torch.Tensor, eps: float = 1.0e-6) -> torch.Tensor:
    """Rotation vector ``axis * angle`` (..., 3), angle in [0, π] radians (the shorter way round), of ``quat``
    (``mju_quat2Vel`` with dt = 1). Near zero angle the first-order series ``2 xyz / w`` is used."""
    quat = quat_unique(quat)
    mag = quat[..., 1:].norm(dim=-1)
    half_angle = torch.atan2(mag, quat[..., 0])
    angle = 2.0 * half_angle
    small = angle.abs() <= eps
    # sin(θ/2)/θ, with its series 1/2 - θ²/48 near 0 (the division is guarded there).
    sin_half_over_angle = torch.where(small, 0.5 - angle * angle / 48,
                                      torch.sin(half_angle) / torch.where(small, torch.ones_like(angle), angle))
    return quat[..., 1:] / sin_half_over_angle.unsqueeze(-1)


def quat_box_minus(q1: torch.Tensor, q2: torch.Tensor) -> torch.Tensor:
    """World-frame rotation vector (..., 3) taking ``q2`` to ``q1``: ``axis_angle(q1 ⊗ q2*)``.

    (MuJoCo's ``mju_subQuat(q1, q2)`` is the same difference in q2's own frame: ``quat_apply(q2, mju_subQuat)``.)
    """
    return axis_angle_from_quat(quat_mul(q1, quat_conjugate(q2)))


def quat_error_magnitude(q1: torch.Tensor, q2: torch.Tensor) -> torch.Tensor:
    """Angle (...,) in radians, in [0, π], between the rotations ``q1`` and ``q2``."""
    return quat_box_minus(q1, q2).norm(dim=-1)


def matrix_from_quat(quat: torch.Tensor) -> torch.Tensor:
    """Rotation matrices (..., 3, 3) of unit quaternions (..., 4): ``v_w = R @ v_b`` (``mju_quat2Mat``)."""
    w, x, y, z = quat.unbind(-1)
    return torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ], dim=-1).reshape(*quat.shape[:-1], 3, 3)


def quat_from_matrix(matrix: torch.Tensor) -> torch.Tensor:
    """Unit quaternion (..., 4) with w >= 0 of rotation matrices (..., 3, 3) (``mju_mat2Quat``, up to sign).

    Of the four algebraically equal candidates (built from the largest of w, x, y, z), the best conditioned one is
    taken per element, so the result is accurate for every rotation.
    """
    m = matrix
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    # 4 * (w², x², y², z²), each clamped at 0 against rounding.
    sq = torch.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22],
                     dim=-1).clamp(min=0.0)
    r = torch.sqrt(sq)  # 2|w|, 2|x|, 2|y|, 2|z|
    d21, d02, d10 = m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]
    s21, s02, s10 = m[..., 2, 1] + m[..., 1, 2], m[..., 0, 2] + m[..., 2, 0], m[..., 1, 0] + m[..., 0, 1]
    candidates = torch.stack([
        torch.stack([r[..., 0] ** 2, d21, d02, d10], dim=-1),
        torch.stack([d21, r[..., 1] ** 2, s10, s02], dim=-1),
        torch.stack([d02, s10, r[..., 2] ** 2, s21], dim=-1),
        torch.stack([d10, s02, s21, r[..., 3] ** 2], dim=-1),
    ], dim=-2) / (2.0 * r.clamp(min=0.1)).unsqueeze(-1)  # row k = 4 q q_k / (4 |q_k|)
    best = r.argmax(dim=-1, keepdim=True)
    quat = torch.gather(candidates, -2, best.unsqueeze(-1).expand(*best.shape[:-1], 1, 4)).squeeze(-2)
    return quat_unique(normalize(quat))


def quat_from_euler_xyz(roll: torch.Tensor, pitch: torch.Tensor, yaw: torch.Tensor) -> torch.Tensor:
    """Unit quaternions (..., 4), (w, x, y, z), of the intrinsic rotation yaw (z) · pitch (y) · roll (x), radians."""
    cr, sr = torch.cos(roll / 2), torch.sin(roll / 2)
    cp, sp = torch.cos(pitch / 2), torch.sin(pitch / 2)
    cy, sy = torch.cos(yaw / 2), torch.sin(yaw / 2)
    return torch.stack([
        cr * cp * cy + sr * sp * sy,
        sr * cp * cy - cr * sp * sy,
        cr * sp * cy + sr * cp * sy,
        cr * cp * sy - sr * sp * cy,
    ], dim=-1)


def yaw_quat(quat: torch.Tensor) -> torch.Tensor:
    """The heading part (..., 4) of ``quat``: the rotation about world z by its yaw angle (roll and pitch dropped)."""
    w, x, y, z = quat.unbind(-1)
    yaw = torch.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))
    zeros = torch.zeros_like(yaw)
    return torch.stack([torch.cos(yaw / 2), zeros, zeros, torch.sin(yaw / 2)], dim=-1)


def combine_frame_transforms(t01: torch.Tensor, q01: torch.Tensor, t12: torch.Tensor | None = None,
                             q12: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Pose of frame 2 in frame 0, ``T02 = T01 T12`` (``mju_mulPose``).

    Args:
        t01, q01: (..., 3), (..., 4) pose of frame 1 in frame 0.
        t12, q12: (..., 3), (..., 4) pose of frame 2 in frame 1 (``None``: zero translation / identity rotation).

    Returns:
        ``(t02, q02)``.
    """
    q02 = q01 if q12 is None else quat_mul(q01, q12)
    t02 = t01 if t12 is None else t01 + quat_apply(q01, t12)
    return t02, q02


def subtract_frame_transforms(t01: torch.Tensor, q01: torch.Tensor, t02: torch.Tensor | None = None,
                              q02: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Pose of frame 2 in frame 1, ``T12 = T01⁻¹ T02`` (``mju_negPose`` then ``mju_mulPose``), e.g. an
    end-effector pose (frame 2, world = frame 0) in the robot's base frame (frame 1).

    Args:
        t01, q01: (..., 3), (..., 4) pose of frame 1 in frame 0.
        t02, q02: (..., 3), (..., 4) pose of frame 2 in frame 0 (``None``: frame 0's origin / orientation).

    Returns:
        ``(t12, q12)``.
    """
    q10 = quat_inv(q01)
    q12 = q10 if q02 is None else quat_mul(q10, q02)
    t12 = quat_apply(q10, -t01 if t02 is None else t02 - t01)
    return t12, q12


def apply_delta_pose(source_pos: torch.Tensor, source_rot: torch.Tensor, delta_pose: torch.Tensor,
                     eps: float = 1.0e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """Pose displaced by ``delta_pose`` (..., 6): translation ``delta_pose[..., :3]`` and rotation vector
    ``delta_pose[..., 3:]`` (radians), both in the frame the pose is expressed in; the rotation is applied on the
    left, ``q ← q(r) ⊗ q`` (rotation vectors shorter than ``eps`` rotate nothing).

    Returns:
        ``(target position (..., 3), target orientation (..., 4))``.
    """
    rotvec = delta_pose[..., 3:6]
    angle = rotvec.norm(dim=-1)
    identity = torch.zeros_like(source_rot)
    identity[..., 0] = 1.0
    delta_quat = torch.where((angle > eps).unsqueeze(-1), quat_from_angle_axis(angle, rotvec), identity)
    return source_pos + delta_pose[..., :3], quat_mul(delta_quat, source_rot)


def compute_pose_error(t01: torch.Tensor, q01: torch.Tensor, t02: torch.Tensor, q02: torch.Tensor,
                       rot_error_type: str = "axis_angle") -> tuple[torch.Tensor, torch.Tensor]:
    """Error from a current pose (frame 1) to a target pose (frame 2), both in frame 0.

    Args:
        t01, q01: (..., 3), (..., 4) current pose.
        t02, q02: (..., 3), (..., 4) target pose.
        rot_error_type: ``"axis_angle"`` (rotation vector (..., 3), frame 0) or ``"quat"`` (``q02 ⊗ q01⁻¹``).

    Returns:
        ``(position error t02 - t01 (..., 3), rotation error)``.

    Raises:
        ValueError: on another ``rot_error_type``.
    """
    if rot_error_type not in ("axis_angle", "quat"):
        raise ValueError(f"rot_error_type must be 'axis_angle' or 'quat', got {rot_error_type!r}.")
    quat_error = quat_mul(q02, quat_inv(q01))
    rot_error = axis_angle_from_quat(quat_error) if rot_error_type == "axis_angle" else quat_error
    return t02 - t01, rot_error
