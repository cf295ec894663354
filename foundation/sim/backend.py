"""The physics-backend interface shared by the MuJoCo C (CPU: one model of N copies, or N simulations on a thread
pool) and MuJoCo Warp (GPU/CPU) implementations.

A backend holds ``num_envs`` copies of one single-environment MuJoCo model and exposes their state as batched
``torch`` tensors whose first dimension is the environment index. Tasks talk only to this interface; they never
import ``mujoco`` or ``mujoco_warp`` themselves (the model is built by the task as an ``mujoco.MjSpec`` and handed
over, which is the one place a task touches MuJoCo's API).

Conventions, identical for every implementation (tensors are float64 on MuJoCo C, float32 on MuJoCo Warp):

* Positions are in the **world frame** in metres. Environment ``i`` is placed at ``env_origins[i]`` (a grid with
  spacing ``env_spacing`` for the one-model MuJoCo C backend; all zeros for the batch and Warp backends, whose
  simulations are separate). Subtract ``env_origins`` to get env-local positions, as in Isaac Lab.
* Quaternions are **(w, x, y, z)**, MuJoCo's order.
* Body arrays exclude MuJoCo's world body: index ``k`` is body ``k + 1`` of the single-env model
  (``body_names[k]``). Site arrays follow the single-env model's site order (``site_names``).
* ``qpos`` / ``qvel`` / ``ctrl`` / ``qfrc_applied`` / ``act`` / ``sensordata`` follow the single-env model's layout.
  For a free joint, ``qpos`` is ``[x, y, z, qw, qx, qy, qz]`` (world frame) and ``qvel`` / ``qfrc_applied`` are
  ``[linear (world frame), angular (body frame)]``. Name lookups (``joint_qpos_cols``, ``actuator_ids``,
  ``body_index``, ``sensor_slice``, ...) turn names of the single-env model into these columns and indices.
* Derived quantities (body and site poses, Jacobians, sensors, contacts) are those MuJoCo's ``mj_step`` leaves:
  computed at the start of the last physics step, i.e. one step behind ``qpos`` (as with ``mj_step``), or at the
  current ``qpos`` after ``kinematics()`` (poses and Jacobians only).
* Jacobians are (N, 6, nv) in the world frame, rows ``[linear (3); angular (3)]``, as ``mj_jacSite``/``mj_jacBody``
  (the linear rows are the velocity of the point, m/s per unit of ``qvel``).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

import mujoco
import numpy as np
import torch


def _chain_masks(model: mujoco.MjModel) -> np.ndarray:
    """(nbody, nv) bool: dof ``j`` moves body ``b`` (the dof's body is ``b`` or one of its ancestors)."""
    masks = np.zeros((model.nbody, model.nv), dtype=bool)
    for b in range(1, model.nbody):
        masks[b] = masks[model.body_parentid[b]]
        masks[b, model.body_dofadr[b]:model.body_dofadr[b] + model.body_dofnum[b]] = True
    return masks


class PhysicsBackend(abc.ABC):
    """Batched MuJoCo simulation of ``num_envs`` identical environments.

    Attributes:
        model: The single-environment ``mujoco.MjModel`` (read its constants, names and sizes from here).
        num_envs: Number of environment copies N.
        device: Torch device of every tensor this backend returns.
        env_origins: (N, 3) world-frame position of each environment's origin, metres.
        body_names: Names of the single-env model's bodies, world body excluded.
        site_names: Names of the single-env model's sites.
        fuses_substeps: Whether ``step(nstep)`` runs its ``nstep`` physics steps in one call that is cheaper than
            ``nstep`` calls of ``step()`` (the env layer then fuses a policy step's physics steps when the task's
            controls are constant across them).
        free_pos_cols: ``qpos`` columns holding the world-frame x, y, z of each free joint (shift these by
            ``env_origins`` to go between env and world frames).
    """

    model: mujoco.MjModel
    num_envs: int
    device: torch.device
    env_origins: torch.Tensor
    fuses_substeps: bool = False

    def __init__(self, model: mujoco.MjModel, num_envs: int, device: str | torch.device) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}.")
        self.model = model
        self.num_envs = num_envs
        self.device = torch.device(device)
        self.body_names = [model.body(i).name for i in range(1, model.nbody)]
        self.site_names = [model.site(i).name for i in range(model.nsite)]
        self._qpos0 = torch.as_tensor(model.qpos0, dtype=torch.float64, device=self.device)  # cast on write
        self.free_pos_cols = [int(model.jnt_qposadr[j]) + k for j in range(model.njnt)
                              if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_FREE for k in range(3)]
        self._chain = torch.as_tensor(_chain_masks(model), device=self.device)
        self._body_rootid = [int(r) for r in model.body_rootid]  # host ints: indexing with them never syncs
        self._site_bodyid = model.site_bodyid.copy()

    # --------------------------------------------------------------------------------------------- name lookups
    def _id(self, obj: mujoco.mjtObj, kind: str, name: str) -> int:
        """MuJoCo id of the ``kind`` named ``name`` in the single-env model; ValueError listing valid names."""
        idx = mujoco.mj_name2id(self.model, obj, name)
        if idx < 0:
            count = {"joint": self.model.njnt, "actuator": self.model.nu, "body": self.model.nbody,
                     "site": self.model.nsite, "sensor": self.model.nsensor, "geom": self.model.ngeom}[kind]
            valid = [n for n in (mujoco.mj_id2name(self.model, obj, i) for i in range(count)) if n]
            raise ValueError(f"The model has no {kind} named '{name}'. Valid: {', '.join(valid) or '(none named)'}.")
        return idx

    def joint_qpos_cols(self, names: Sequence[str]) -> list[int]:
        """``qpos`` columns of the named joints, in the order given (7 for a free joint, 4 for a ball, else 1).

        Raises:
            ValueError: on an unknown joint name (the message lists the valid ones).
        """
        return self._joint_cols(names, self.model.jnt_qposadr, free_width=7, ball_width=4)

    def joint_dof_cols(self, names: Sequence[str]) -> list[int]:
        """``qvel`` / ``qfrc_applied`` / Jacobian columns of the named joints, in the order given (6 for a free
        joint, 3 for a ball, else 1).

        Raises:
            ValueError: on an unknown joint name.
        """
        return self._joint_cols(names, self.model.jnt_dofadr, free_width=6, ball_width=3)

    def _joint_cols(self, names: Sequence[str], adr, free_width: int, ball_width: int) -> list[int]:
        """Columns ``adr[j] .. adr[j] + width`` of each named joint j (width by joint type, 1 for hinge/slide)."""
        widths = {int(mujoco.mjtJoint.mjJNT_FREE): free_width, int(mujoco.mjtJoint.mjJNT_BALL): ball_width}
        cols = []
        for name in names:
            j = self._id(mujoco.mjtObj.mjOBJ_JOINT, "joint", name)
            cols += range(int(adr[j]), int(adr[j]) + widths.get(int(self.model.jnt_type[j]), 1))
        return cols

    def actuator_ids(self, names: Sequence[str]) -> list[int]:
        """``ctrl`` columns of the named actuators, in the order given.

        Raises:
            ValueError: on an unknown actuator name.
        """
        return [self._id(mujoco.mjtObj.mjOBJ_ACTUATOR, "actuator", name) for name in names]

    def geom_ids(self, names: Sequence[str]) -> list[int]:
        """Geom ids of the single-env model (for ``max_penetration``), in the order given.

        Raises:
            ValueError: on an unknown geom name.
        """
        return [self._id(mujoco.mjtObj.mjOBJ_GEOM, "geom", name) for name in names]

    def body_geom_ids(self, name: str) -> list[int]:
        """Ids of every geom of the named body (for ``max_penetration``).

        Raises:
            ValueError: on an unknown body name.
        """
        b = self._id(mujoco.mjtObj.mjOBJ_BODY, "body", name)
        start = int(self.model.body_geomadr[b])
        return list(range(start, start + int(self.model.body_geomnum[b]))) if start >= 0 else []

    def body_index(self, name: str) -> int:
        """Index of the named body in the body arrays (``body_pos_w[:, k]``, ``body_jacobian(k)``): its MuJoCo id
        minus one, since the world body is excluded.

        Raises:
            ValueError: on an unknown body name, or the world body.
        """
        b = self._id(mujoco.mjtObj.mjOBJ_BODY, "body", name)
        if b == 0:
            raise ValueError("The world body is not in the body arrays; name a body of the environment.")
        return b - 1

    def site_index(self, name: str) -> int:
        """Index of the named site in the site arrays (``site_pos_w[:, s]``, ``site_jacobian(s)``).

        Raises:
            ValueError: on an unknown site name.
        """
        return self._id(mujoco.mjtObj.mjOBJ_SITE, "site", name)

    def sensor_slice(self, name: str) -> slice:
        """Columns of the named sensor in ``sensordata`` (e.g. 3 for a force sensor, in its site's frame).

        Raises:
            ValueError: on an unknown sensor name.
        """
        k = self._id(mujoco.mjtObj.mjOBJ_SENSOR, "sensor", name)
        adr = int(self.model.sensor_adr[k])
        return slice(adr, adr + int(self.model.sensor_dim[k]))

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
    def sensordata(self) -> torch.Tensor:
        """(N, nsensordata) sensor values in MuJoCo's units and frames (each sensor's columns: ``sensor_slice``)."""
        return self._sensordata

    @property
    @abc.abstractmethod
    def site_pos_w(self) -> torch.Tensor:
        """(N, nsite, 3) world-frame site positions, metres."""

    @property
    @abc.abstractmethod
    def site_xmat_w(self) -> torch.Tensor:
        """(N, nsite, 9) world-frame site rotation matrices, row-major."""

    # ------------------------------------------------------------------------------------------ Jacobians, contacts
    # Implementations bind _cdof (N, nv, 6) [angular; linear] and _subtree_com (N, nbody-1, 3), MuJoCo's own
    # quantities; the Jacobians are built from them as mj_jac does, so all backends share one definition.
    def _jacobian(self, body_id: int, point_w: torch.Tensor) -> torch.Tensor:
        """(N, 6, nv) Jacobian of the world point ``point_w`` (N, 3) attached to MuJoCo body ``body_id``."""
        root = self._body_rootid[body_id]
        offset = point_w - self._subtree_com[:, root - 1]
        ang, lin = self._cdof[..., :3], self._cdof[..., 3:]
        jacp = lin + torch.linalg.cross(ang, offset.unsqueeze(1).expand_as(ang), dim=-1)
        return torch.cat([jacp, ang], dim=-1).transpose(1, 2) * self._chain[body_id]

    def body_jacobian(self, body_index: int) -> torch.Tensor:
        """(N, 6, nv) world-frame Jacobian ``[linear; angular]`` of the origin of body ``body_index`` (index into the
        body arrays, see ``body_index``), as MuJoCo's ``mj_jacBody``.

        Raises:
            IndexError: if ``body_index`` is out of range.
        """
        if not 0 <= body_index < self.model.nbody - 1:
            raise IndexError(f"body_index {body_index} out of range [0, {self.model.nbody - 1}).")
        return self._jacobian(body_index + 1, self.body_pos_w[:, body_index])

    def site_jacobian(self, site_index: int) -> torch.Tensor:
        """(N, 6, nv) world-frame Jacobian ``[linear; angular]`` of site ``site_index``, as ``mj_jacSite``.

        Raises:
            IndexError: if ``site_index`` is out of range.
        """
        if not 0 <= site_index < self.model.nsite:
            raise IndexError(f"site_index {site_index} out of range [0, {self.model.nsite}).")
        return self._jacobian(int(self._site_bodyid[site_index]), self.site_pos_w[:, site_index])

    @abc.abstractmethod
    def _contacts(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The active contacts as ``(env (K,), geom1 (K,), geom2 (K,), dist (K,))``: env index, the two geom ids
        of the single-env model (int64) and the signed distance in metres (negative: penetration). Rows that are
        padding have env index ``num_envs``."""

    def num_contacts(self) -> torch.Tensor:
        """(N,) int64 number of contacts of each env found by the last physics step's collision detection."""
        return torch.bincount(self._contacts()[0], minlength=self.num_envs + 1)[:self.num_envs]

    def max_penetration(self, geom_ids_a: Sequence[int], geom_ids_b: Sequence[int]) -> torch.Tensor:
        """(N,) deepest penetration between any geom of ``geom_ids_a`` and any of ``geom_ids_b``, metres.

        Penetration is ``max(0, -dist)`` of MuJoCo's contacts (``contact.dist``: negative when the geoms overlap),
        0 where no such contact exists. Contacts are those of the last physics step's collision detection.
        Cost: one pass over all contacts on MuJoCo C and Warp; on ``mujoco_batch`` one ``MjData`` read per env
        (~20 µs each). For a signal read every step there, a contact sensor in the MJCF (``<contact body1= body2=
        data="dist" reduce="mindist"/>``, read through ``sensordata``) costs nothing extra on every backend.

        Args:
            geom_ids_a, geom_ids_b: Geom ids of the single-env model (``geom_ids``, ``body_geom_ids``).

        Raises:
            ValueError: on an empty set or a geom id out of range.
        """
        masks = []
        for ids in (geom_ids_a, geom_ids_b):
            ids = list(ids)
            if not ids or min(ids) < 0 or max(ids) >= self.model.ngeom:
                raise ValueError(f"max_penetration needs non-empty geom ids in [0, {self.model.ngeom}), got {ids}.")
            mask = torch.zeros(self.model.ngeom, dtype=torch.bool, device=self.device)
            mask[ids] = True
            masks.append(mask)
        a, b = masks
        env, g1, g2, dist = self._contacts()
        hit = (a[g1] & b[g2]) | (b[g1] & a[g2])
        depth = torch.where(hit, (-dist).clamp(min=0.0), torch.zeros_like(dist))
        out = torch.zeros(self.num_envs + 1, dtype=depth.dtype, device=self.device)  # last: padding rows
        return out.scatter_reduce_(0, env, depth, reduce="amax")[:self.num_envs]

    # -------------------------------------------------------------------------------------------------- stepping
    @abc.abstractmethod
    def step(self, nstep: int = 1) -> None:
        """Advance every environment by ``nstep`` physics steps of ``model.opt.timestep`` seconds each, with the
        controls and applied forces held constant."""

    @abc.abstractmethod
    def kinematics(self) -> None:
        """Recompute body and site poses and the Jacobians' inputs from ``qpos`` (call after writing ``qpos``)."""

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
