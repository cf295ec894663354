"""Differential inverse kinematics: joint-position targets that move an end-effector towards a commanded pose.

Names and behaviour follow Isaac Lab's ``isaaclab.controllers.DifferentialIKController``: a command (absolute or
relative to the current end-effector pose) is stored by ``set_command``; ``compute`` returns
``joint_pos + Δq`` with ``Δq`` the damped least-squares (``"dls"``) or pseudo-inverse (``"pinv"``) solution of
``J Δq = e``, ``e`` the position (or position and axis-angle orientation) error. Poses, the Jacobian and the error are
all in one frame of the caller's choice (the backends give world-frame poses and Jacobians; Isaac Lab uses the
robot's root frame), quaternions (w, x, y, z).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch

from foundation.utils.math import apply_delta_pose, compute_pose_error

#: Default ``ik_params`` per method (Isaac Lab's values).
_DEFAULT_PARAMS = {"dls": {"lambda_val": 0.01}, "pinv": {"k_val": 1.0}}


def dls_delta_joint_pos(jacobian: torch.Tensor, delta_pose: torch.Tensor, lambda_val: float) -> torch.Tensor:
    """Damped-least-squares joint step ``Jᵀ (J Jᵀ + λ² I)⁻¹ e`` (N, num_joints).

    Args:
        jacobian: (N, m, num_joints) task Jacobian (rows e.g. [linear; angular], world frame).
        delta_pose: (N, m) task-space error e (m, and rad for angular rows).
        lambda_val: Damping λ (same units as ``delta_pose``).
    """
    jjt = jacobian @ jacobian.transpose(1, 2)
    damped = jjt + lambda_val**2 * torch.eye(jjt.shape[-1], dtype=jjt.dtype, device=jjt.device)
    return (jacobian.transpose(1, 2) @ torch.linalg.solve(damped, delta_pose.unsqueeze(-1))).squeeze(-1)


@dataclass
class DifferentialIKControllerCfg:
    """Configuration of :class:`DifferentialIKController` (Isaac Lab's field names).

    Attributes:
        command_type: ``"position"`` (3-D end-effector position; orientation left free) or ``"pose"`` (position and
            orientation).
        use_relative_mode: Commands are deltas from the current end-effector pose (``"position"``: (dx, dy, dz) m;
            ``"pose"``: (dx, dy, dz) m and a rotation vector (rx, ry, rz) rad in the poses' frame, applied on the
            left: ``q_des = q(r) ⊗ q``) instead
            of absolute targets (``"position"``: (x, y, z); ``"pose"``: (x, y, z, qw, qx, qy, qz)).
        ik_method: ``"dls"``: damped least squares, ``Δq = Jᵀ (J Jᵀ + λ² I)⁻¹ e``, robust at singularities;
            ``"pinv"``: ``Δq = k · J⁺ e`` (Moore-Penrose pseudo-inverse).
        ik_params: ``{"lambda_val": λ}`` for ``"dls"`` (default 0.01), ``{"k_val": k}`` for ``"pinv"`` (default 1.0);
            missing keys take the defaults.
    """

    command_type: Literal["position", "pose"] = "pose"
    use_relative_mode: bool = False
    ik_method: Literal["dls", "pinv"] = "dls"
    ik_params: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.command_type not in ("position", "pose"):
            raise ValueError(f"command_type must be 'position' or 'pose', got {self.command_type!r}.")
        if self.ik_method not in _DEFAULT_PARAMS:
            raise ValueError(f"ik_method must be one of {', '.join(_DEFAULT_PARAMS)}, got {self.ik_method!r}.")
        unknown = set(self.ik_params) - set(_DEFAULT_PARAMS[self.ik_method])
        if unknown:
            raise ValueError(f"ik_params {sorted(unknown)} are not parameters of ik_method '{self.ik_method}'; valid: "
                             f"{', '.join(_DEFAULT_PARAMS[self.ik_method])}.")
        self.ik_params = {**_DEFAULT_PARAMS[self.ik_method], **self.ik_params}


class DifferentialIKController:
    """Batched differential IK for ``num_envs`` arms.

    Args:
        cfg: The controller configuration.
        num_envs: Batch size N.
        device: Torch device of the stored command and targets.

    Attributes:
        ee_pos_des: (N, 3) target end-effector position.
        ee_quat_des: (N, 4) target end-effector orientation (w, x, y, z); for ``"position"`` commands, the
            orientation at the time of the command (not tracked).
    """

    def __init__(self, cfg: DifferentialIKControllerCfg, num_envs: int, device: str | torch.device = "cpu") -> None:
        self.cfg = cfg
        self.num_envs = num_envs
        self._device = torch.device(device)
        self.ee_pos_des = torch.zeros(num_envs, 3, device=self._device)
        self.ee_quat_des = torch.zeros(num_envs, 4, device=self._device)
        self.ee_quat_des[:, 0] = 1.0
        self._command = torch.zeros(num_envs, self.action_dim, device=self._device)

    @property
    def action_dim(self) -> int:
        """Size of one command: 3 (position), 6 (relative pose) or 7 (absolute pose)."""
        if self.cfg.command_type == "position":
            return 3
        return 6 if self.cfg.use_relative_mode else 7

    def reset(self, env_ids: torch.Tensor | None = None) -> None:
        """Zero the stored command of ``env_ids`` (all when ``None``)."""
        self._command[slice(None) if env_ids is None else env_ids] = 0.0

    def set_command(self, command: torch.Tensor, ee_pos: torch.Tensor | None = None,
                    ee_quat: torch.Tensor | None = None) -> None:
        """Store the target end-effector pose.

        Args:
            command: (N, action_dim) command (see ``DifferentialIKControllerCfg.use_relative_mode``).
            ee_pos: (N, 3) current end-effector position; required in relative mode.
            ee_quat: (N, 4) current end-effector orientation; required for ``"position"`` commands (kept as the
                target orientation) and relative ``"pose"`` commands.

        Raises:
            ValueError: on a command of the wrong shape, or a missing current pose.
        """
        if command.shape != (self.num_envs, self.action_dim):
            raise ValueError(f"Expected a command of shape ({self.num_envs}, {self.action_dim}) for command_type "
                             f"'{self.cfg.command_type}' (relative: {self.cfg.use_relative_mode}), got "
                             f"{tuple(command.shape)}.")
        relative = self.cfg.use_relative_mode
        if (relative and ee_pos is None) or ((relative or self.cfg.command_type == "position") and ee_quat is None):
            raise ValueError("set_command needs the current end-effector pose: ee_pos in relative mode, ee_quat for "
                             "position commands and relative pose commands.")
        self._command[:] = command
        if self.cfg.command_type == "position":
            self.ee_pos_des = ee_pos + command if relative else command.clone()
            self.ee_quat_des = ee_quat.clone()
        elif relative:
            self.ee_pos_des, self.ee_quat_des = apply_delta_pose(ee_pos, ee_quat, command)
        else:
            self.ee_pos_des, self.ee_quat_des = command[:, :3].clone(), command[:, 3:7].clone()

    def compute(self, ee_pos: torch.Tensor, ee_quat: torch.Tensor, jacobian: torch.Tensor,
                joint_pos: torch.Tensor) -> torch.Tensor:
        """Joint-position targets (N, num_joints) one IK step towards the stored target.

        Args:
            ee_pos: (N, 3) current end-effector position, metres.
            ee_quat: (N, 4) current end-effector orientation (w, x, y, z).
            jacobian: (N, 6, num_joints) end-effector Jacobian ``[linear; angular]`` over the controlled joints
                (e.g. ``backend.site_jacobian(s)[:, :, backend.joint_dof_cols(arm_joints)]``).
            joint_pos: (N, num_joints) current positions of those joints, radians or metres.

        Raises:
            ValueError: if the shapes do not match.
        """
        n, nj = joint_pos.shape
        if jacobian.shape != (n, 6, nj) or ee_pos.shape != (n, 3) or ee_quat.shape != (n, 4):
            raise ValueError(f"compute expects ee_pos (N, 3), ee_quat (N, 4), jacobian (N, 6, {nj}) and joint_pos "
                             f"(N, {nj}); got {tuple(ee_pos.shape)}, {tuple(ee_quat.shape)}, {tuple(jacobian.shape)}, "
                             f"{tuple(joint_pos.shape)}.")
        if self.cfg.command_type == "position":
            error, jac = self.ee_pos_des - ee_pos, jacobian[:, :3]
        else:
            pos_error, rot_error = compute_pose_error(ee_pos, ee_quat, self.ee_pos_des, self.ee_quat_des)
            error, jac = torch.cat([pos_error, rot_error], dim=-1), jacobian
        return joint_pos + self._compute_delta_joint_pos(error, jac)

    def _compute_delta_joint_pos(self, delta_pose: torch.Tensor, jacobian: torch.Tensor) -> torch.Tensor:
        """(N, num_joints) joint step solving ``jacobian Δq = delta_pose`` (N, m) by the configured method."""
        if self.cfg.ik_method == "pinv":
            return self.cfg.ik_params["k_val"] * (torch.linalg.pinv(jacobian) @ delta_pose.unsqueeze(-1)).squeeze(-1)
        return dls_delta_joint_pos(jacobian, delta_pose, self.cfg.ik_params["lambda_val"])
