"""Reward terms of gear assembly in Isaac Lab Factory's form: keypoint distances squashed at three scales, engagement
and success bonuses, an action-rate penalty.

Factory (``isaaclab_tasks/direct/factory``) places keypoints along the held part's axis, compares them with the same
keypoints of the part's target (here: the gear fully seated on the shaft) and rewards the mean distance ``x`` through

    r(x) = 1 / (exp(a x) + b + exp(-a x))

with (a, b) = (5, 4) ("baseline": felt from tens of centimetres), (50, 2) ("coarse": centimetres) and (100, 0)
("fine": millimetres); r is largest at x = 0: 1 / (2 + b).
"""

from __future__ import annotations

import torch

from foundation.utils.math import matrix_from_quat


def squashing_fn(x: torch.Tensor, a: float, b: float) -> torch.Tensor:
    """Factory's keypoint squashing ``1 / (exp(a x) + b + exp(-a x))`` of distances ``x`` (any shape, metres).

    Args:
        a: Sharpness, 1/m (5, 50, 100 in Factory).
        b: Offset (4, 2, 0 in Factory); r(0) = 1 / (2 + b).

    Raises:
        ValueError: if ``a <= 0`` or ``b <= -2`` (r would not be a bounded bump at 0).
    """
    if a <= 0 or b <= -2:
        raise ValueError(f"squashing_fn needs a > 0 and b > -2, got a={a}, b={b}.")
    return 1.0 / (torch.exp(a * x) + b + torch.exp(-a * x))


def keypoint_offsets(num_keypoints: int, scale_m: float) -> torch.Tensor:
    """(K, 3) keypoints on a part's local z axis, evenly from -scale_m/2 to +scale_m/2 (Factory's layout).

    Raises:
        ValueError: if ``num_keypoints < 2`` or ``scale_m <= 0``.
    """
    if num_keypoints < 2 or scale_m <= 0:
        raise ValueError(f"keypoint_offsets needs num_keypoints >= 2 and scale_m > 0, got {num_keypoints}, "
                         f"{scale_m}.")
    offsets = torch.zeros(num_keypoints, 3)
    offsets[:, 2] = (torch.linspace(0.0, 1.0, num_keypoints) - 0.5) * scale_m
    return offsets


def keypoint_distance(pos_a: torch.Tensor, quat_a: torch.Tensor, pos_b: torch.Tensor, quat_b: torch.Tensor,
                      offsets: torch.Tensor) -> torch.Tensor:
    """(N,) mean distance between the keypoints ``offsets`` (K, 3) placed in frame a and in frame b, metres.

    Args:
        pos_a, pos_b: (N, 3) frame origins, world frame, m.
        quat_a, quat_b: (N, 4) frame orientations (w, x, y, z), world frame.
        offsets: (K, 3) keypoints in each frame (``keypoint_offsets``).
    """
    offsets = offsets.to(pos_a)
    kp_a = pos_a[:, None] + torch.einsum("nij,kj->nki", matrix_from_quat(quat_a.to(pos_a)), offsets)
    kp_b = pos_b[:, None] + torch.einsum("nij,kj->nki", matrix_from_quat(quat_b.to(pos_a)), offsets)
    return torch.linalg.vector_norm(kp_a - kp_b, dim=-1).mean(dim=-1)


def axial_radial_error(pos: torch.Tensor, target_pos: torch.Tensor, target_quat: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """Signed height along the target's z axis and radial distance from that axis of ``pos`` relative to
    ``target_pos`` (e.g. the gear centre relative to its seated position on the shaft).

    Args:
        pos, target_pos: (N, 3) world frame, m.
        target_quat: (N, 4) target orientation (w, x, y, z); its local z is the axis.

    Returns:
        ``(height (N,), radial (N,))``, metres; height > 0 above the target.
    """
    axis = matrix_from_quat(target_quat.to(pos))[..., :, 2]
    d = pos - target_pos
    height = (d * axis).sum(dim=-1)
    radial = torch.linalg.vector_norm(d - height[:, None] * axis, dim=-1)
    return height, radial
