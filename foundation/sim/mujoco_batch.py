"""MuJoCo batch backend: N separate simulations (one ``MjData`` each) of one ``MjModel``, stepped on a thread pool.

Built on ``mujoco.batch.Batch`` (MuJoCo >= 4.0), the successor of ``mujoco.rollout`` for stepping many simulations
in place: each simulation's state is one row of a (N, nstate) array that the batch loads into a ``MjData``, steps
and saves back, on ``nthread`` threads, and the derived fields bound here (body and site poses, sensors, ``cdof``) are
copied out after every call. ``mujoco.rollout.Rollout`` would need the state copied in and out of its arguments on
every call and returns no derived fields, so it was not used.

Why a second CPU backend: a contact-rich scene (the gear-assembly prototype, 68 contacts per env) stepped ~3x faster
this way than as one model of N copies (DESIGN.md §5: 5.8k vs 2.0k env-steps/s at 256 envs): each simulation's
constraint problem stays small and in cache, and the threads share the work. A contact-free quadrotor is faster as
one model (``backend="mujoco"``). ``step(nstep)`` runs ``nstep`` physics steps per simulation in one call (threads
stay busy, one Python call per policy step), which the env layer uses when a task's controls are constant across a
policy step (``DirectRLEnv.constant_action_across_substeps``).

The batch is persistent (one ``MjData`` per simulation, ``persistent=True``): contacts live in each ``MjData``'s arena,
which cannot be bound, and ``max_penetration`` reads them per simulation. All tensors are float64 zero-copy views of
the batch's arrays on the CPU; env origins are all zero (separate simulations never touch).
"""

from __future__ import annotations

import copy

import mujoco
import mujoco.batch
import numpy as np
import torch

from foundation.sim.backend import PhysicsBackend


def _view(array: np.ndarray) -> torch.Tensor:
    """Zero-copy torch view of a batch array (outputs are flagged read-only by the batch, but only it writes them)."""
    array.flags.writeable = True
    return torch.from_numpy(array)


class MujocoBatchBackend(PhysicsBackend):
    """``num_envs`` simulations of a single-env model in a ``mujoco.batch.Batch`` (float64 tensors on the CPU).

    Args:
        spec: The single-environment model, compiled once (``self.model``).
        num_envs: Number of simulations N.
        nthread: Threads of the batch's pool, including the caller's (0: one per CPU core).

    Raises:
        ValueError: if ``num_envs < 1`` or ``nthread < 0``.

    MuJoCo's automatic reset of a simulation on a numerical blow-up is disabled, as in the other backends: its state
    stays non-finite until the env layer resets it (``nonfinite_envs``). A simulation in which MuJoCo raises an error
    (e.g. its arena is too small) keeps its state from before the call and is reported by ``nonfinite_envs`` too.
    """

    fuses_substeps = True

    def __init__(self, spec: mujoco.MjSpec, num_envs: int, nthread: int = 0) -> None:
        super().__init__(spec.copy().compile(), num_envs, "cpu")
        if nthread < 0:
            raise ValueError(f"nthread must be >= 0 (0: one per CPU core), got {nthread}.")
        m = self.model
        run_model = copy.copy(m)
        run_model.opt.disableflags |= mujoco.mjtDisableBit.mjDSBL_AUTORESET
        self.batch = mujoco.batch.Batch(run_model, nsim=num_envs, nthread=nthread, persistent=True)
        self.env_origins = torch.zeros(num_envs, 3)  # float32, as the other backends
        b = self.batch
        self._qpos, self._qvel, self._ctrl = _view(b.bind("qpos")), _view(b.bind("qvel")), _view(b.bind("ctrl"))
        self._qfrc, self._warm, self._act = (_view(b.bind("qfrc_applied")), _view(b.bind("qacc_warmstart")),
                                             _view(b.bind("act")))
        self._xfrc = _view(b.bind("xfrc_applied"))[:, 1:]
        self._xpos, self._xquat = _view(b.bind("xpos"))[:, 1:], _view(b.bind("xquat"))[:, 1:]
        self._site_xpos = _view(b.bind("site_xpos"))
        self._site_xmat = _view(b.bind("site_xmat")).reshape(num_envs, m.nsite, 9)
        self._sensordata = _view(b.bind("sensordata"))
        self._cdof, self._subtree_com = _view(b.bind("cdof")), _view(b.bind("subtree_com"))[:, 1:]
        self._failed = torch.zeros(num_envs, dtype=torch.bool)  # MuJoCo raised in these since the last check
        self._scratch = mujoco.MjData(m)  # receives one simulation's MjData to read its contacts
        self.reset_to_default(torch.arange(num_envs))
        self.kinematics()

    site_pos_w = property(lambda self: self._site_xpos, doc=PhysicsBackend.site_pos_w.__doc__)
    site_xmat_w = property(lambda self: self._site_xmat, doc=PhysicsBackend.site_xmat_w.__doc__)

    def _run(self, call, *args, **kwargs) -> None:
        """Run a batch call; simulations MuJoCo raised in are remembered for ``nonfinite_envs``."""
        try:
            call(*args, **kwargs)
        except mujoco.batch.SimulationError as err:
            self._failed[torch.as_tensor(err.ids, dtype=torch.long)] = True

    def step(self, nstep: int = 1) -> None:
        """``nstep`` ``mj_step`` of every simulation in one call on the batch's threads."""
        self._run(self.batch.step, nstep=nstep)

    def kinematics(self) -> None:
        """MuJoCo's position stage (``mj_fwdPosition``: kinematics, ``comPos``, collisions) of every simulation."""
        self._run(self.batch.forward, stage=mujoco.mjtStage.mjSTAGE_POS)

    def nonfinite_envs(self) -> torch.Tensor:
        """(N,) bool: non-finite now, or MuJoCo raised in it since the last call (see ``PhysicsBackend``)."""
        bad = super().nonfinite_envs() | self._failed
        self._failed = torch.zeros_like(self._failed)
        return bad

    def _contacts(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        # Contacts live in each simulation's MjData arena: read them one simulation at a time (~20 µs each for the
        # test arm). A contact sensor in the MJCF (data="dist", reduce="mindist") gives the same in sensordata for free.
        envs, geoms, dists = [], [], []
        for i in range(self.num_envs):
            self.batch.get_data(i, self._scratch)
            contact = self._scratch.contact
            envs.append(np.full(self._scratch.ncon, i))
            geoms.append(np.array(contact.geom, dtype=np.int64).reshape(-1, 2))  # a copy: the scratch is reused
            dists.append(contact.dist.copy())
        geom = torch.from_numpy(np.concatenate(geoms))
        return (torch.from_numpy(np.concatenate(envs).astype(np.int64)), geom[:, 0], geom[:, 1],
                torch.from_numpy(np.concatenate(dists)))

    def _clear_envs(self, env_ids: torch.Tensor) -> None:
        self._warm[env_ids] = 0.0
        self._act[env_ids] = 0.0
