"""Scripted gear insertion: from a shaft pose estimate and the current TCP position, the TCP target of each step.

A baseline and a source of demonstrations: move the held gear above the shaft, then descend along the shaft axis and
press slightly below the seated height. It knows nothing of the gear's pose in the fingers (it assumes the gear is
centred on the TCP) and nothing of contact: an estimate off the axis by more than the chamfer and clearance
(1.35 mm) lands the gear on the shaft's top face, and it stays there. Batched over N environments (torch, any device);
it does not depend on the env or on MuJoCo. The orientation is the caller's (hold the start orientation: the hole is
round, so no yaw alignment is needed).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

APPROACH, DESCEND = 0, 1
"""Phases: move to the hover point above the shaft tip; descend along the shaft axis (and stay pressed at the end)."""


@dataclass
class ScriptedInsertionCfg:
    """Gains and set-points of the scripted insertion (per control step of ``step_dt``; the defaults assume 30 Hz)."""

    hover_clearance_m: float = 0.01
    """Height of the gear's bottom face above the shaft tip at the hover point, m."""
    gear_half_thickness_m: float = 0.005
    """Half the gear's thickness, m (the gear centre is this far above its bottom face)."""
    align_tolerance_m: float = 0.001
    """Distance of the TCP from the hover point below which the descent starts, m."""
    max_step_m: float = 0.01
    """Largest distance of the returned target from the current TCP while approaching, m (0.3 m/s at 30 Hz)."""
    max_push_m: float = 0.001
    """Largest distance of the target ahead of the TCP along the shaft axis while descending, m: bounds the push on a
    blocked gear to the arm's Cartesian stiffness times this (a few newtons, below the grip's friction limit). Across
    the axis the target keeps the full ``max_step_m``, so the gear is held firmly on the estimated axis: clipping the
    whole step instead left ~0.3 mm of the lateral error and the shaft pushed the gear 3 mm over in 30 % of starts."""
    descend_step_m: float = 0.001
    """Descent of the target per step along the shaft axis, m (3 cm/s at 30 Hz)."""
    press_depth_m: float = 0.001
    """How far below the seated height the descent ends, m: keeps the gear pressed onto the boss."""


class ScriptedInsertion:
    """Phase machine mapping (TCP position, shaft estimate) to a TCP position target, for N environments.

    Args:
        num_envs: Number of environments N.
        cfg: Set-points; defaults to :class:`ScriptedInsertionCfg`.
        device: Torch device of the phase state.
    """

    def __init__(self, num_envs: int, cfg: ScriptedInsertionCfg | None = None, device: str | torch.device = "cpu"):
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}.")
        self.cfg = cfg or ScriptedInsertionCfg()
        self.num_envs = num_envs
        self.phase = torch.full((num_envs,), APPROACH, dtype=torch.long, device=device)
        self.descent_m = torch.zeros(num_envs, device=device)

    def reset(self, env_ids: torch.Tensor | None = None) -> None:
        """Start over (phase APPROACH) in ``env_ids`` (all when None)."""
        ids = slice(None) if env_ids is None else env_ids
        self.phase[ids] = APPROACH
        self.descent_m[ids] = 0.0

    def compute(self, tcp_pos: torch.Tensor, shaft_tip_pos: torch.Tensor, seated_pos: torch.Tensor) -> torch.Tensor:
        """Advance the phases and return the TCP position target of this step.

        Args:
            tcp_pos: (N, 3) current TCP position, world frame, m.
            shaft_tip_pos: (N, 3) estimated shaft tip (centre of its top face), world frame, m.
            seated_pos: (N, 3) estimated gear-centre position when fully seated, world frame, m. The shaft axis is
                taken as the direction from ``seated_pos`` to ``shaft_tip_pos``.

        Returns:
            (N, 3) TCP target, world frame, m: at most ``max_step_m`` from ``tcp_pos`` while approaching; while
            descending, at most ``max_push_m`` from it along the shaft axis and ``max_step_m`` across.

        Raises:
            ValueError: if an input is not (N, 3).
        """
        for name, t in (("tcp_pos", tcp_pos), ("shaft_tip_pos", shaft_tip_pos), ("seated_pos", seated_pos)):
            if t.shape != (self.num_envs, 3):
                raise ValueError(f"{name} must have shape ({self.num_envs}, 3), got {tuple(t.shape)}.")
        c = self.cfg
        dtype = tcp_pos.dtype
        axis = torch.nn.functional.normalize(shaft_tip_pos - seated_pos, dim=-1)
        hover = shaft_tip_pos + axis * (c.hover_clearance_m + c.gear_half_thickness_m)
        aligned = (tcp_pos - hover).norm(dim=-1) < c.align_tolerance_m
        self.phase = torch.where((self.phase == APPROACH) & aligned, DESCEND, self.phase)
        descending = self.phase == DESCEND
        depth_total = ((hover - seated_pos) * axis).sum(-1) + c.press_depth_m  # hover -> end of the descent, m
        self.descent_m = torch.where(descending, torch.minimum(self.descent_m + c.descend_step_m, depth_total.to(
            self.descent_m.dtype)), self.descent_m)
        target = hover - axis * self.descent_m.to(dtype)[:, None]
        # Clip the step: as a whole to max_step_m while approaching; while descending, its component along the shaft
        # axis to max_push_m (a gentle push) and the rest to max_step_m (firm alignment on the estimated axis).
        step = target - tcp_pos
        along = (step * axis).sum(-1, keepdim=True)
        descend = _clip_norm(step - along * axis, c.max_step_m) + along.clamp(-c.max_push_m, c.max_push_m) * axis
        return tcp_pos + torch.where(descending[:, None], descend, _clip_norm(step, c.max_step_m))

def _clip_norm(v: torch.Tensor, max_norm: float) -> torch.Tensor:
    """Rows of ``v`` (N, 3) scaled down to at most ``max_norm`` long."""
    norm = v.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return v * (max_norm / norm).clamp(max=1.0)
