"""Success predicate of gear assembly: the gear sits on the shaft, coaxial and at its fully seated height."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from foundation.utils.math import matrix_from_quat


@dataclass
class GearSuccessCfg:
    """Tolerances of a seated gear (the issue's definition; Isaac Lab's Factory uses 2.5 mm in xy as well)."""

    axis_tolerance_m: float = 0.0025
    """Largest distance of the gear's axis (its centre and both face centres) from the shaft axis, m."""
    height_tolerance_m: float = 0.002
    """Largest distance of the gear centre from its fully seated height along the shaft axis, m."""
    gear_half_thickness_m: float = 0.005
    """Half the gear's thickness, m (scripts/build_gear_assets.py: GEAR_THICKNESS_M / 2): where the face centres are."""


def gear_seated(gear_pos: torch.Tensor, gear_quat: torch.Tensor, seated_pos: torch.Tensor, shaft_quat: torch.Tensor,
                cfg: GearSuccessCfg | None = None) -> torch.Tensor:
    """Whether each gear is seated on its shaft.

    Args:
        gear_pos: (N, 3) gear centre (site ``gear_center``), world frame, m.
        gear_quat: (N, 4) gear orientation (w, x, y, z), world frame; the gear's axis is its local z.
        seated_pos: (N, 3) where the gear centre is when fully seated (site ``gear_seated``), world frame, m.
        shaft_quat: (N, 4) shaft frame orientation (w, x, y, z), world frame; the shaft's axis is its local z.
        cfg: Tolerances; defaults to :class:`GearSuccessCfg`.

    Returns:
        (N,) bool: the gear's centre and both face centres lie within ``axis_tolerance_m`` of the shaft axis and the
        centre within ``height_tolerance_m`` of the seated height. Checking the face centres makes a tilted gear fail.

    Raises:
        ValueError: if the shapes are not (N, 3) / (N, 4) with one N.
    """
    cfg = cfg or GearSuccessCfg()
    n = gear_pos.shape[0]
    for name, t, width in (("gear_pos", gear_pos, 3), ("gear_quat", gear_quat, 4), ("seated_pos", seated_pos, 3),
                           ("shaft_quat", shaft_quat, 4)):
        if t.shape != (n, width):
            raise ValueError(f"{name} must have shape ({n}, {width}), got {tuple(t.shape)}.")
    r_shaft = matrix_from_quat(shaft_quat)  # (N, 3, 3) shaft -> world
    gear_axis = matrix_from_quat(gear_quat)[..., :, 2]  # (N, 3) world
    offsets = torch.tensor([-1.0, 0.0, 1.0], dtype=gear_pos.dtype, device=gear_pos.device) * cfg.gear_half_thickness_m
    points = gear_pos[:, None, :] + offsets[None, :, None] * gear_axis[:, None, :]  # (N, 3 points, 3)
    local = torch.einsum("nji,npj->npi", r_shaft, points - seated_pos[:, None, :])  # in the shaft frame
    radial_ok = (local[..., :2].norm(dim=-1) <= cfg.axis_tolerance_m).all(dim=-1)
    height_ok = local[:, 1, 2].abs() <= cfg.height_tolerance_m
    return radial_ok & height_ok
