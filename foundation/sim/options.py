"""MuJoCo solver and integrator options as a config (``MujocoCfg``), applied to a model's ``MjSpec`` before compiling.

Field names are those of MJCF's ``<option>`` element (and of mjlab's ``MujocoCfg``); every field defaults to ``None``,
which leaves the value the MJCF file sets (or MuJoCo's default when the file sets none).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal

import mujoco

from foundation.utils.config import FieldChecks

_ENUMS = {
    "integrator": {"euler": mujoco.mjtIntegrator.mjINT_EULER, "rk4": mujoco.mjtIntegrator.mjINT_RK4,
                   "implicit": mujoco.mjtIntegrator.mjINT_IMPLICIT,
                   "implicitfast": mujoco.mjtIntegrator.mjINT_IMPLICITFAST},
    "cone": {"pyramidal": mujoco.mjtCone.mjCONE_PYRAMIDAL, "elliptic": mujoco.mjtCone.mjCONE_ELLIPTIC},
    "solver": {"pgs": mujoco.mjtSolver.mjSOL_PGS, "cg": mujoco.mjtSolver.mjSOL_CG,
               "newton": mujoco.mjtSolver.mjSOL_NEWTON},
}


@dataclass
class MujocoCfg:
    """Physics options of MJCF ``<option>`` (https://mujoco.readthedocs.io/en/stable/XMLreference.html#option).

    ``None`` leaves the model's own value. The time step is not here: it is ``SimCfg.dt``.

    Attributes:
        integrator: ``"euler"``, ``"implicit"``, ``"implicitfast"`` or ``"rk4"``.
        cone: Friction cone, ``"pyramidal"`` or ``"elliptic"`` (a friction grasp needs elliptic, DESIGN.md §5).
        solver: Constraint solver, ``"newton"``, ``"cg"`` or ``"pgs"``.
        impratio: Ratio of frictional to normal constraint impedance (>= 1 is MuJoCo's valid range; 10 held the
            prototype's gear in the fingers, DESIGN.md §5).
        iterations: Maximum main-solver iterations, >= 1.
        ls_iterations: Maximum line-search iterations, >= 1.
        tolerance: Main-solver tolerance, >= 0 (0 disables early termination).
        ls_tolerance: Line-search tolerance, >= 0.
        noslip_iterations: Iterations of the no-slip solver, >= 0 (0 disables it).
        noslip_tolerance: Tolerance of the no-slip solver, >= 0.
        ccd_iterations: Maximum iterations of convex collision detection, >= 1.
        ccd_tolerance: Tolerance of convex collision detection, >= 0.
        gravity: World-frame gravitational acceleration (x, y, z), m/s².
    """

    integrator: Literal["euler", "implicit", "implicitfast", "rk4"] | None = None
    cone: Literal["pyramidal", "elliptic"] | None = None
    solver: Literal["newton", "cg", "pgs"] | None = None
    impratio: float | None = None
    iterations: int | None = None
    ls_iterations: int | None = None
    tolerance: float | None = None
    ls_tolerance: float | None = None
    noslip_iterations: int | None = None
    noslip_tolerance: float | None = None
    ccd_iterations: int | None = None
    ccd_tolerance: float | None = None
    gravity: tuple[float, float, float] | None = None

    def validate(self) -> None:
        """Raise ``ConfigError`` (a ``ValueError``) naming each field outside MuJoCo's valid range."""
        c = FieldChecks(self, "MuJoCo options")
        minimum = {"impratio": 1.0, "iterations": 1, "ls_iterations": 1, "ccd_iterations": 1, "tolerance": 0.0,
                   "ls_tolerance": 0.0, "noslip_iterations": 0, "noslip_tolerance": 0.0, "ccd_tolerance": 0.0}
        for name, low in minimum.items():
            if getattr(self, name) is not None:
                c.at_least(name, low)
        for name, valid in _ENUMS.items():
            if getattr(self, name) is not None:
                c.one_of(name, valid)
        c.raise_errors()

    def apply_to(self, spec: mujoco.MjSpec) -> None:
        """Write every field that is not ``None`` into ``spec.option`` (before ``spec.compile()``).

        Raises:
            ValueError: if a field is out of range (see ``validate``).
        """
        self.validate()
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            setattr(spec.option, f.name, _ENUMS[f.name][value] if f.name in _ENUMS else value)
