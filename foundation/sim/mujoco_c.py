"""MuJoCo C backend: N environments as N copies inside one ``MjModel``, stepped by the MuJoCo C library on the CPU.

Why one model of N copies (rather than N ``MjData`` on threads, the ``mujoco_batch`` backend): on the 2-core
reference CPU it stepped a quadrotor batch 2.3x faster at 1024 envs (917k vs 397k env-steps/s, DESIGN.md §5), its
state is a handful of contiguous arrays that ``torch.from_numpy`` views without copying, and every ``MjData`` field
(body and site poses, contacts, sensors) stays available to the task. Contact-rich scenes may run faster as separate
simulations (``foundation/sim/mujoco_batch.py``). Copies never touch each other: each is
placed at its own ``env_origins`` cell (``env_spacing``) and MuJoCo's islands keep their constraint problems
separate. The automatic reset of the whole ``MjData`` on a numerical blow-up is disabled; the env layer resets only
the environments whose state became non-finite.
"""

from __future__ import annotations

import math
import warnings
import xml.etree.ElementTree as ET
from copy import deepcopy

import mujoco
import numpy as np
import torch

from foundation.sim.backend import PhysicsBackend


def grid_origins(num_envs: int, spacing_m: float) -> np.ndarray:
    """(N, 3) env origins on a square grid in the z=0 plane, centred on the world origin (Isaac Lab's layout)."""
    cols = math.ceil(math.sqrt(num_envs))
    idx = np.arange(num_envs)
    xy = np.stack([idx // cols, idx % cols], axis=1).astype(np.float64) * spacing_m
    xy -= xy.mean(axis=0) if num_envs > 1 else 0.0
    return np.concatenate([xy, np.zeros((num_envs, 1))], axis=1)


#: Arena bytes per environment copy when the model sets no ``<size memory>`` (contacts and constraints live here).
DEFAULT_MEMORY_PER_COPY = 1 << 20

#: Top-level MJCF sections kept once and shared by every copy; every other section (actuator, sensor, tendon,
#: equality, contact, deformable, ...) refers to objects of the environment and is repeated per copy.
_SHARED_SECTIONS = ("compiler", "option", "size", "visual", "statistic", "default", "asset", "extension", "custom",
                    "keyframe", "worldbody")
#: Prefix of the probe copy that MuJoCo's own ``MjSpec.attach`` renames (no name of ours starts with it).
_PROBE = "__replication_probe__/"


def reference_attributes(spec: mujoco.MjSpec) -> set[tuple[str, str]]:
    """The ``(element tag, attribute)`` pairs of ``spec``'s MJCF (as ``spec.to_xml()`` writes it) that hold the name
    of an object of the environment or a reference to one, as MuJoCo itself knows them.

    How: ``spec`` is attached once under the prefix ``_PROBE`` by ``MjSpec.attach``, MuJoCo's own namespacing, which
    prefixes every name and every reference (sites of actuators and their ``refsite``, ``site1``/``site2`` of welds,
    ``sidesite`` of tendon wraps, ``objname``/``refname`` of sensors, targets of cameras, ...). The attributes of the
    worldbody and of the per-copy sections whose values came out prefixed are the answer, less the references to
    assets and default classes, which the copies share: those are the attributes named after an asset element of the
    model (``mesh=``, ``material=``, ``hfield=``, ... MJCF's naming rule) and ``class``/``childclass``. This
    replaces a hand-kept list of MJCF attributes, which went stale (it missed ``refsite``, ``site1``/``site2`` and
    ``sidesite``). Only attribute names are taken from the probe: its element content is not reused (``to_xml`` of
    an attached spec drops explicit values that equal a child default, e.g. a free joint's ``damping="0"``).
    """
    probe = mujoco.MjSpec()
    probe.copy_during_attach = True
    for name in dir(spec.option):  # the same options: attach reports no conflicts (the probe is never compiled)
        if not name.startswith("_"):
            setattr(probe.option, name, getattr(spec.option, name))
    probe.compiler.conflict = mujoco.mjtConflict.mjCONFLICT_MERGE
    with warnings.catch_warnings():  # any other conflict is merged silently: only names are read from the probe
        warnings.simplefilter("ignore")
        probe.attach(spec, prefix=_PROBE, frame=probe.worldbody.add_frame())
        root = ET.fromstring(probe.to_xml())
    shared_refs = {el.tag for section in root.findall("asset") for el in section} | {"class", "childclass"}
    per_copy = [section for section in root if section.tag not in _SHARED_SECTIONS] + root.findall("worldbody")
    return {(el.tag, attr) for section in per_copy for el in section.iter() for attr, value in el.attrib.items()
            if value.startswith(_PROBE) and attr not in shared_refs}


def _is_shared_plane(el: ET.Element) -> bool:
    """Whether ``el`` is a world plane geom (a floor), which the copies share."""
    return el.tag == "geom" and el.get("type") == "plane"


def _prefixed(element: ET.Element, prefix: str, refs: set[tuple[str, str]], planes: set[str]) -> ET.Element:
    """Deep copy of ``element`` with every name and reference (``refs``) prefixed, except references to the shared
    world ``planes``."""
    copy = deepcopy(element)
    for node in copy.iter():
        for attr, value in node.attrib.items():
            if (node.tag, attr) in refs and (attr == "name" or value not in planes):
                node.attrib[attr] = prefix + value
    return copy


def replicate_spec(spec: mujoco.MjSpec, num_envs: int, spacing_m: float) -> mujoco.MjSpec:
    """Return a spec holding ``num_envs`` copies of ``spec``'s world, copy ``i`` prefixed ``env{i}/``.

    The copies are written into the MJCF text, each inside a ``<frame>`` at its origin; assets (meshes, textures,
    materials), defaults, options, visual settings and horizontal ground planes stay single and shared, so build
    time is linear in ``num_envs`` (``MjSpec.attach`` of every copy duplicates every asset per copy and was
    quadratic: 47 s for 2048 quadrotors). Which attributes are names and references is asked of MuJoCo
    (``reference_attributes``); every other top-level section than ``_SHARED_SECTIONS`` is repeated per copy.
    References to a shared plane (a contact pair with the floor) are not prefixed.
    Keyframes are dropped (their sizes no longer match). The memory arena is sized per copy (see below).

    Raises:
        ValueError: if a world plane is tilted or raised (it cannot be shared), or a referenced name is both a world
            plane's and another object's (the reference would be ambiguous).
    """
    root = ET.fromstring(spec.to_xml())
    world = root.find("worldbody")
    # Infinite planes in the world (floors) are kept once: a copy per env would touch every other env's bodies.
    planes = [el for el in world if _is_shared_plane(el)]
    for plane in planes:
        if any(abs(float(v)) > 1e-9 for v in (plane.get("pos", "0 0 0").split()[2:] + plane.get("zaxis", "0 0 1").split()[:2])):
            raise ValueError("Only horizontal world planes at z=0 can be shared by environment copies; "
                             f"plane '{plane.get('name', '')}' is tilted or raised. Use a box geom instead.")
    originals = {world: [el for el in world if el not in planes]}
    for section in root:
        if section.tag not in _SHARED_SECTIONS:
            originals[section] = list(section)
    for parent, children in originals.items():
        for child in children:
            parent.remove(child)
    for keyframe in root.findall("keyframe"):
        root.remove(keyframe)

    refs = reference_attributes(spec)
    plane_names = {p.get("name") for p in planes if p.get("name")}
    elements = [el for children in originals.values() for child in children for el in child.iter()]
    own = {el.get("name") for el in elements if el.get("name")}
    referenced = {value for el in elements for attr, value in el.attrib.items() if (el.tag, attr) in refs}
    if ambiguous := own & plane_names & referenced:
        raise ValueError(f"Names {sorted(ambiguous)} are referenced and used both by a shared world plane and by "
                         "another object of the environment; rename one of them.")
    for i, origin in enumerate(grid_origins(num_envs, spacing_m)):
        frame = ET.SubElement(world, "frame", pos=" ".join(repr(float(x)) for x in origin))
        for parent, children in originals.items():
            for child in children:
                (frame if parent is world else parent).append(_prefixed(child, f"env{i}/", refs, plane_names))
    replicated = mujoco.MjSpec.from_string(ET.tostring(root, encoding="unicode"))
    replicated.modelfiledir = spec.modelfiledir
    # The compiler's automatic arena estimate grows faster than linearly (6.7 GB for 2048 quadrotors), so the
    # arena is sized per copy: the model's own <size memory>, else DEFAULT_MEMORY_PER_COPY.
    replicated.memory = (spec.memory if spec.memory > 0 else DEFAULT_MEMORY_PER_COPY) * num_envs
    return replicated


class MujocoCBackend(PhysicsBackend):
    """``num_envs`` copies of a single-env model in one ``MjModel``/``MjData`` (float64 tensors on the CPU).

    Args:
        spec: The single-environment model. It is compiled once as is (``self.model``) and once replicated.
        num_envs: Number of copies N.
        env_spacing: Distance between neighbouring env origins on the grid, metres. Use 0 only for models whose
            copies cannot touch (contacts disabled).

    Raises:
        ValueError: if ``num_envs < 1``, a site of the model has no name (sites are matched across copies by name), or
            a world plane is not horizontal at z=0.

    An environment whose state holds a NaN or infinity before a physics step is put back to its default state first
    (and still reported by ``nonfinite_envs``): otherwise the shared constraint solver spreads the NaN to every env.
    A blow-up that starts inside a step can still reach the other envs of that step.
    """

    def __init__(self, spec: mujoco.MjSpec, num_envs: int, env_spacing: float = 0.0) -> None:
        super().__init__(spec.copy().compile(), num_envs, "cpu")
        m = self.model
        if any(not name for name in self.site_names):
            raise ValueError("Every site of the model needs a name to be matched across environment copies.")
        self.big_model = replicate_spec(spec, num_envs, env_spacing).compile()
        self.big_model.opt.disableflags |= mujoco.mjtDisableBit.mjDSBL_AUTORESET
        self.data = mujoco.MjData(self.big_model)
        self.env_origins = torch.from_numpy(grid_origins(num_envs, env_spacing)).float()

        # Joints, dofs, actuators and bodies of copy i are contiguous and in the single-env order; check it.
        bm = self.big_model
        if (bm.nq, bm.nv, bm.nu, bm.nbody - 1) != (num_envs * m.nq, num_envs * m.nv, num_envs * m.nu,
                                                    num_envs * (m.nbody - 1)):
            raise RuntimeError("Replicated model sizes do not match num_envs copies of the single-env model.")
        last = bm.nbody - (m.nbody - 1)
        for k, name in enumerate(self.body_names):
            if name and bm.body(last + k).name != f"env{num_envs - 1}/{name}":
                raise RuntimeError(f"Body order differs between copies at '{name}'.")
        if bm.nsensordata != num_envs * m.nsensordata:
            raise RuntimeError("Replicated model's sensors do not match num_envs copies of the single-env model.")
        self._geom_env, self._geom_local = self._geom_tables()

        n, d = num_envs, self.data
        self._qpos = torch.from_numpy(d.qpos).view(n, m.nq)
        self._qvel = torch.from_numpy(d.qvel).view(n, m.nv)
        self._ctrl = torch.from_numpy(d.ctrl).view(n, m.nu)
        self._qfrc = torch.from_numpy(d.qfrc_applied).view(n, m.nv)
        self._xfrc = torch.from_numpy(d.xfrc_applied)[1:].view(n, m.nbody - 1, 6)
        self._warm = torch.from_numpy(d.qacc_warmstart).view(n, m.nv)
        self._act = torch.from_numpy(d.act).view(n, m.na)
        self._xpos = torch.from_numpy(d.xpos)[1:].view(n, m.nbody - 1, 3)
        self._xquat = torch.from_numpy(d.xquat)[1:].view(n, m.nbody - 1, 4)
        self._site_ids = torch.tensor(
            [[mujoco.mj_name2id(bm, mujoco.mjtObj.mjOBJ_SITE, f"env{i}/{s}") for s in self.site_names]
             for i in range(n)], dtype=torch.long).view(n, m.nsite)
        self._site_xpos = torch.from_numpy(d.site_xpos)
        self._site_xmat = torch.from_numpy(d.site_xmat)
        self._sensordata = torch.from_numpy(d.sensordata).view(n, m.nsensordata)
        self._cdof = torch.from_numpy(d.cdof).view(n, m.nv, 6)
        self._subtree_com = torch.from_numpy(d.subtree_com)[1:].view(n, m.nbody - 1, 3)
        self._quarantined = torch.zeros(n, dtype=torch.bool)  # reset before a step for non-finite state
        self.reset_to_default(torch.arange(n))
        self.kinematics()

    site_pos_w = property(lambda self: self._site_xpos[self._site_ids], doc=PhysicsBackend.site_pos_w.__doc__)
    site_xmat_w = property(lambda self: self._site_xmat[self._site_ids], doc=PhysicsBackend.site_xmat_w.__doc__)

    def _geom_tables(self) -> tuple[torch.Tensor, torch.Tensor]:
        """For each geom of the replicated model, its env (-1 for a shared world plane) and single-env geom id.

        Geoms of a body follow their body; the world body's geoms are the shared planes, then each copy's
        world-level geoms in turn (the order ``replicate_spec`` writes them). Checked against the geom types.
        """
        m, bm, n = self.model, self.big_model, self.num_envs
        env = np.full(bm.ngeom, -1, dtype=np.int64)
        local = np.zeros(bm.ngeom, dtype=np.int64)
        world = [g for g in range(m.ngeom) if m.geom_bodyid[g] == 0]
        planes = [g for g in world if m.geom_type[g] == mujoco.mjtGeom.mjGEOM_PLANE]
        others = [g for g in world if g not in planes]
        local[:len(planes)] = planes
        for i in range(n):
            start = len(planes) + i * len(others)
            env[start:start + len(others)] = i
            local[start:start + len(others)] = others
        for g in range(bm.ngeom):
            bb = int(bm.geom_bodyid[g])
            if bb > 0:
                env[g], k = divmod(bb - 1, m.nbody - 1)
                local[g] = m.body_geomadr[k + 1] + g - bm.body_geomadr[bb]
        if not (np.array_equal(bm.geom_type, m.geom_type[local]) and np.allclose(bm.geom_size, m.geom_size[local])):
            raise RuntimeError("Geom order differs between the replicated and the single-env model.")
        return torch.from_numpy(env), torch.from_numpy(local)

    def _contacts(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        contact = self.data.contact
        geom = torch.from_numpy(np.asarray(contact.geom, dtype=np.int64).reshape(-1, 2))
        env = torch.maximum(self._geom_env[geom[:, 0]], self._geom_env[geom[:, 1]])  # a shared plane has -1
        return env, self._geom_local[geom[:, 0]], self._geom_local[geom[:, 1]], torch.from_numpy(contact.dist.copy())

    def step(self, nstep: int = 1) -> None:
        """``nstep`` ``mj_step`` of the whole model, each after resetting any env whose state is non-finite (class
        docstring)."""
        d = self.data
        for _ in range(nstep):
            if not (np.isfinite(d.qpos).all() and np.isfinite(d.qvel).all() and np.isfinite(d.qacc_warmstart).all()):
                bad = PhysicsBackend.nonfinite_envs(self) | ~torch.isfinite(self._warm).all(dim=1)
                self._quarantined |= bad
                self.reset_to_default(bad.nonzero(as_tuple=False).squeeze(-1))
            mujoco.mj_step(self.big_model, d)

    def nonfinite_envs(self) -> torch.Tensor:
        """(N,) bool: non-finite now, or reset before a step since the last call (see ``PhysicsBackend``)."""
        bad = super().nonfinite_envs() | self._quarantined
        self._quarantined = torch.zeros_like(self._quarantined)
        return bad

    def kinematics(self) -> None:
        """``mj_kinematics`` and ``mj_comPos`` of the whole model: body and site poses and Jacobians from ``qpos``."""
        mujoco.mj_kinematics(self.big_model, self.data)
        mujoco.mj_comPos(self.big_model, self.data)

    def _clear_envs(self, env_ids: torch.Tensor) -> None:
        self._warm[env_ids] = 0.0
        self._act[env_ids] = 0.0
