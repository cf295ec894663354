"""Reference trajectories for goal-tracking rollouts, and the statistics of the tracking error.

A trajectory gives each environment a goal position that moves with that environment's episode time; ``play.py``
writes it into the task every policy step through the task's optional public hook::

    def set_goal(self, env_ids: torch.Tensor, goal_pos: torch.Tensor) -> None:
        '''Set the goal of ``env_ids`` (K,) to ``goal_pos`` (K, 3), env frame, metres.'''

(point control has it) and measures the error with the task's ``distance_to_goal() -> (N,)`` metres.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class Figure8:
    """Figure-8 (lemniscate of Gerono) in a horizontal plane, starting at its centre, env frame.

    ``x = A sin(ωt)``, ``y = A sin(ωt) cos(ωt)``, ``z = z0`` with ``ω = 2π / period``: 2A m long, A m wide.

    Attributes:
        amplitude_m: A, half the length of the figure, metres.
        period_s: Time for one full figure, seconds.
        height_m: z0, height of the plane, metres.

    Raises:
        ValueError: if the amplitude or the period is not positive.
    """

    amplitude_m: float = 1.0
    period_s: float = 8.0
    height_m: float = 1.0

    def __post_init__(self) -> None:
        if self.amplitude_m <= 0 or self.period_s <= 0:
            raise ValueError(f"Figure-8 amplitude ({self.amplitude_m} m) and period ({self.period_s} s) must be "
                             "positive.")

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        """Goal positions (K, 3), metres, at times ``t`` (K,) seconds."""
        phase = (2.0 * math.pi / self.period_s) * t.float()
        s = torch.sin(phase)
        return torch.stack([self.amplitude_m * s, self.amplitude_m * s * torch.cos(phase),
                            torch.full_like(s, self.height_m)], dim=-1)

    def path(self, num_points: int = 100) -> np.ndarray:
        """(num_points + 1, 3) points of one closed figure (for drawing), metres."""
        t = torch.linspace(0.0, self.period_s, num_points + 1)
        return self(t).double().numpy()


class TrackingErrors:
    """Accumulates tracking-error samples (metres) and reports their statistics."""

    def __init__(self) -> None:
        self._chunks: list[torch.Tensor] = []

    def add(self, errors: torch.Tensor, mask: torch.Tensor | None = None) -> None:
        """Record ``errors`` (N,) metres, only where ``mask`` (N,) bool is True (all when None)."""
        errors = errors.detach().float().cpu()
        self._chunks.append(errors if mask is None else errors[mask.cpu()])

    def summary(self) -> dict[str, float]:
        """``{"mean_m", "p95_m", "max_m", "samples"}`` over every recorded sample (NaN statistics if none)."""
        values = torch.cat(self._chunks) if self._chunks else torch.zeros(0)
        if values.numel() == 0:
            return {"mean_m": float("nan"), "p95_m": float("nan"), "max_m": float("nan"), "samples": 0}
        return {"mean_m": values.mean().item(), "p95_m": float(np.percentile(values.numpy(), 95)),
                "max_m": values.max().item(), "samples": int(values.numel())}
