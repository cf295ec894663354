"""The physics-backend interface shared by the MuJoCo C (CPU) and MuJoCo Warp (GPU/CPU) implementations.

A backend holds ``num_envs`` copies of one single-environment MuJoCo model and exposes their state as batched
``torch`` tensors whose first dimension is the environment index. Tasks talk only to this interface; they never
import ``mujoco`` or ``mujoco_warp`` themselves (the model is built by the task as an ``mujoco.MjSpec`` and handed
over, which is the one place a task touches MuJoCo's API).

Conventions, identical for both implementations:

* Positions are in the **world frame** in metres. Environment ``i`` is placed at ``env_origins[i]`` (a grid with
  spacing ``env_spacing``; all zeros for the Warp backend, whose worlds are separate). Subtract ``env_origins`` to
  get env-local positions, as in Isaac Lab.
* Quaternions are **(w, x, y, z)**, MuJoCo's order.
* Body arrays exclude MuJoCo's world body: index ``k`` is body ``k + 1`` of the single-env model
  (``body_names[k]``). Site arrays follow the single-env model's site order (``site_names``).
* ``qpos`` / ``qvel`` / ``ctrl`` / ``qfrc_applied`` / ``act`` follow the single-env model's layout. For a free joint,
  ``qpos`` is ``[x, y, z, qw, qx, qy, qz]`` (world frame) and ``qvel`` / ``qfrc_applied`` are
  ``[linear (world frame), angular (body frame)]``.
"""

from __future__ import annotations

import abc

import mujoco
import torch


class PhysicsBackend(abc.ABC):
    """Batched MuJoCo simulation of ``num_envs`` identical environments.

    Attributes:
        model: The single-environment ``mujoco.MjModel`` (read its constants, names and sizes from here).
        num_envs: Number of environment copies N.
        device: Torch device of every tensor this backend returns.
        env_origins: (N, 3) world-frame position of each environment's origin, metres.
        body_names: Names of the single-env model's bodies, world body excluded.
        site_names: Names of the single-env model's sites.
        free_pos_cols: ``qpos`` columns holding the world-frame x, y, z of each free joint (shift these by
            ``env_origins`` to go between env and world frames).
    """

    model: mujoco.MjModel
    num_envs: int
    device: torch.device
    env_origins: torch.Tensor

    def __init__(self, model: mujoco.MjModel, num_envs: int, device: str | torch.device) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}.")
        self.model = model
        self.num_envs = num_envs
        self.device = torch.device(device)
        self.body_names = [model.body(i).name for i in range(1, model.nbody)]
        self.site_names = [model.site(i).name for i in range(model.nsite)]
        self._qpos0 = torch.as_tensor(model.qpos0, dtype=torch.float32, device=self.device)
        self.free_pos_cols = [int(model.jnt_qposadr[j]) + k for j in range(model.njnt)
                              if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_FREE for k in range(3)]

    # ----------------------------------------------------------------------------------------------------- state
    # Implementations bind these zero-copy views in __init__: _qpos, _qvel, _ctrl, _qfrc, _xfrc, _xpos, _xquat.
    @property
    def qpos(self) -> torch.Tensor:
        """(N, nq) generalized positions; writable in place."""
        return self._qpos

    @property
    def qvel(self) -> torch.Tensor:
        """(N, nv) generalized velocities; writable in place."""
        return self._qvel

    @property
    def ctrl(self) -> torch.Tensor:
        """(N, nu) actuator controls; writable in place."""
        return self._ctrl

    @property
    def qfrc_applied(self) -> torch.Tensor:
        """(N, nv) generalized forces applied by the user (N or N·m per dof); writable in place."""
        return self._qfrc

    @property
    def xfrc_applied(self) -> torch.Tensor:
        """(N, nbody-1, 6) world-frame wrench ``[force (N), torque (N·m)]`` at each body's CoM; writable in place.

        Note: in the MuJoCo C backend, whose N environments share one model, every non-zero entry costs a Jacobian
        over the whole model (O(N) each, O(N²) in all). For free bodies write ``qfrc_applied`` instead.
        """
        return self._xfrc

    @property
    def body_pos_w(self) -> torch.Tensor:
        """(N, nbody-1, 3) world-frame body positions, metres (valid after ``step`` or ``kinematics``)."""
        return self._xpos

    @property
    def body_quat_w(self) -> torch.Tensor:
        """(N, nbody-1, 4) world-frame body orientations, quaternion (w, x, y, z)."""
        return self._xquat

    @property
    @abc.abstractmethod
    def site_pos_w(self) -> torch.Tensor:
        """(N, nsite, 3) world-frame site positions, metres."""

    @property
    @abc.abstractmethod
    def site_xmat_w(self) -> torch.Tensor:
        """(N, nsite, 9) world-frame site rotation matrices, row-major."""

    # -------------------------------------------------------------------------------------------------- stepping
    @abc.abstractmethod
    def step(self) -> None:
        """Advance every environment by one physics step of ``model.opt.timestep`` seconds."""

    @abc.abstractmethod
    def kinematics(self) -> None:
        """Recompute body and site poses from ``qpos`` (call after writing ``qpos`` directly)."""

    @abc.abstractmethod
    def _clear_envs(self, env_ids: torch.Tensor) -> None:
        """Zero the warm-start, actuator activations and applied forces of ``env_ids`` (int64, shape (K,))."""

    def write_state(self, env_ids: torch.Tensor, qpos: torch.Tensor, qvel: torch.Tensor) -> None:
        """Reset a subset of environments to the given state.

        Applied forces, controls, actuator activations and the solver warm start of those environments are
        zeroed, so nothing of the previous episode carries over. Call ``kinematics()`` afterwards if body or site
        poses are read before the next ``step()``.

        Args:
            env_ids: (K,) int64 indices of the environments to reset.
            qpos: (K, nq) generalized positions (world frame: add ``env_origins`` to free-joint positions).
            qvel: (K, nv) generalized velocities.

        Raises:
            ValueError: if the shapes do not match.
        """
        if qpos.shape != (len(env_ids), self.model.nq) or qvel.shape != (len(env_ids), self.model.nv):
            raise ValueError(
                f"write_state expects qpos ({len(env_ids)}, {self.model.nq}) and qvel ({len(env_ids)}, "
                f"{self.model.nv}), got {tuple(qpos.shape)} and {tuple(qvel.shape)}."
            )
        self.qpos[env_ids] = qpos.to(self.qpos.dtype)
        self.qvel[env_ids] = qvel.to(self.qvel.dtype)
        self.ctrl[env_ids] = 0.0
        self.qfrc_applied[env_ids] = 0.0
        self.xfrc_applied[env_ids] = 0.0
        self._clear_envs(env_ids)

    def nonfinite_envs(self) -> torch.Tensor:
        """(N,) bool: environments whose ``qpos`` or ``qvel`` holds a NaN or infinity (or, for a backend that resets
        such envs before stepping, held one since the last call)."""
        return ~(torch.isfinite(self.qpos).all(dim=1) & torch.isfinite(self.qvel).all(dim=1))

    def reset_to_default(self, env_ids: torch.Tensor) -> None:
        """Put ``env_ids`` back at the model's ``qpos0`` (shifted to their origins) with zero velocity."""
        qpos = self._qpos0.expand(len(env_ids), -1).clone()
        qpos[:, self.free_pos_cols] += self.env_origins[env_ids].repeat(1, len(self.free_pos_cols) // 3)
        self.write_state(env_ids, qpos, torch.zeros(len(env_ids), self.model.nv, device=self.device))
