"""Controllers shared by tasks: batched torch, named as Isaac Lab's ``isaaclab.controllers``."""

from foundation.controllers.differential_ik import DifferentialIKController, DifferentialIKControllerCfg

__all__ = ["DifferentialIKController", "DifferentialIKControllerCfg"]
