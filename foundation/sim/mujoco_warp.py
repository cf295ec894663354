"""MuJoCo Warp backend: N environments as ``nworld`` worlds of one model, stepped by MuJoCo Warp kernels.

The default on CUDA; it also runs on Warp's CPU device (slowly: kernels run single-threaded and compile on first use,
30–90 s, cached under ``WARP_CACHE_PATH``) so the tests can check it against the MuJoCo C backend. Tensors are
zero-copy ``torch`` views of the Warp arrays (float32).
"""

from __future__ import annotations

import os

import mujoco
import torch

from foundation.sim.backend import PhysicsBackend


def _import_warp():
    """Import warp and mujoco_warp, pointing the kernel cache at ``WARP_CACHE_PATH`` when it is set."""
    import warp as wp

    if os.environ.get("WARP_CACHE_PATH"):
        wp.config.kernel_cache_dir = os.environ["WARP_CACHE_PATH"]
    wp.config.quiet = True
    import mujoco_warp as mjw

    return wp, mjw


class MujocoWarpBackend(PhysicsBackend):
    """``num_envs`` worlds of a single-env model in MuJoCo Warp (float32 tensors on ``device``).

    Args:
        spec: The single-environment model.
        num_envs: Number of worlds N.
        device: ``"cpu"`` or ``"cuda[:k]"``.
        nconmax: Contacts per world MuJoCo Warp allocates for (``None``: MuJoCo Warp's default).
        njmax: Constraint rows per world (``None``: MuJoCo Warp's default).

    All env origins are zero: worlds do not interact, so they need no spacing.

    Raises:
        ImportError: if ``warp`` / ``mujoco_warp`` are not installed.
    """

    def __init__(self, spec: mujoco.MjSpec, num_envs: int, device: str = "cpu",
                 nconmax: int | None = None, njmax: int | None = None) -> None:
        super().__init__(spec.copy().compile(), num_envs, device)
        wp, mjw = _import_warp()
        self._wp, self._mjw = wp, mjw
        self._wp_device = wp.get_device("cpu" if self.device.type == "cpu" else f"cuda:{self.device.index or 0}")
        mjd = mujoco.MjData(self.model)
        mujoco.mj_forward(self.model, mjd)
        with wp.ScopedDevice(self._wp_device):
            self.wp_model = mjw.put_model(self.model)
            self.wp_data = mjw.put_data(self.model, mjd, nworld=num_envs, nconmax=nconmax, njmax=njmax)
        self.env_origins = torch.zeros(num_envs, 3, device=self.device)
        d = self.wp_data
        view = wp.to_torch
        self._qpos, self._qvel, self._ctrl = view(d.qpos), view(d.qvel), view(d.ctrl)
        self._qfrc, self._warm, self._act = view(d.qfrc_applied), view(d.qacc_warmstart), view(d.act)
        self._xfrc = view(d.xfrc_applied)[:, 1:]
        self._xpos, self._site_xpos = view(d.xpos)[:, 1:], view(d.site_xpos)
        self._xquat = view(d.xquat)[:, 1:]
        self._site_xmat = view(d.site_xmat)
        self._sensordata = view(d.sensordata)
        self._cdof, self._subtree_com = view(d.cdof), view(d.subtree_com)[:, 1:]
        self._contact_dist, self._contact_world = view(d.contact.dist), view(d.contact.worldid)
        self._nacon = view(d.nacon)
        self.reset_to_default(torch.arange(num_envs, device=self.device))
        self.kinematics()

    site_pos_w = property(lambda self: self._site_xpos, doc=PhysicsBackend.site_pos_w.__doc__)
    site_xmat_w = property(lambda self: self._site_xmat.reshape(self.num_envs, -1, 9),
                           doc=PhysicsBackend.site_xmat_w.__doc__)

    def step(self, nstep: int = 1) -> None:
        """``nstep`` ``mujoco_warp.step`` of every world."""
        with self._wp.ScopedDevice(self._wp_device):
            for _ in range(nstep):
                self._mjw.step(self.wp_model, self.wp_data)

    def kinematics(self) -> None:
        """``mujoco_warp.kinematics`` and ``com_pos`` of every world: body and site poses, Jacobians from ``qpos``."""
        with self._wp.ScopedDevice(self._wp_device):
            self._mjw.kinematics(self.wp_model, self.wp_data)
            self._mjw.com_pos(self.wp_model, self.wp_data)

    def _contacts(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        # Contact rows are shared by all worlds; rows past nacon are stale: they become padding (env index N),
        # masked on the device without reading nacon back to the host.
        geom = self._wp.to_torch(self.wp_data.contact.geom).long().clamp(0, self.model.ngeom - 1)
        valid = torch.arange(geom.shape[0], device=self.device) < self._nacon
        world = torch.where(valid, self._contact_world.long(), self.num_envs)
        return world, geom[:, 0], geom[:, 1], self._contact_dist

    def _clear_envs(self, env_ids: torch.Tensor) -> None:
        self._warm[env_ids] = 0.0
        self._act[env_ids] = 0.0
