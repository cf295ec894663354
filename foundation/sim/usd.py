"""Load an OpenUSD asset (e.g. ``USD/crazyflie/cf2x.usda``) as an ``MjSpec`` with MuJoCo's own USD decoder.

The decoder is the ``usd_decoder`` plugin of ``mujoco-usd`` (Google DeepMind, pinned with this package at the
version of ``mujoco``), registered when ``mujoco`` is imported; ``MjSpec.from_file`` then reads ``.usd*`` files.
Three adjustments make the decoded spec behave like the MJCF the USD was exported from (``scripts/export_usd.py``):

* **Names.** The decoder names every object by its prim path (``/cf2x/Geometry/cf2x/rotor0``). Each is shortened to
  the prim's own name (``rotor0``, the MJCF name the converter kept), in the name and in every reference to it,
  wherever that short name is unique among the objects of each kind that carry it; so a task finds its bodies,
  joints and sites by the names of its MJCF.
* **Inertia.** ``mujoco-usd-converter`` authors a body's inertia both as principal axes and moments
  (``UsdPhysics.MassAPI``) and, when the MJCF gave a full tensor, as ``newton:inertia``; ``mujoco-usd`` 4.0.0 reads
  both and then refuses to compile ("fullinertia and diagonal inertia cannot both be specified"). The two describe
  the same tensor; the principal-axes form is kept.
* **Texture coordinates.** USD's face-varying UVs become a mesh with separate texture-coordinate indices, which
  MJCF cannot express, so ``MjSpec.to_xml`` (used by the MuJoCo C backend to replicate the env) would write a mesh
  that no longer compiles. Such meshes get one vertex per face corner (same surface, same texture).
"""

from __future__ import annotations

import collections
import xml.etree.ElementTree as ET

import mujoco
import numpy as np

#: File extensions read with the USD decoder instead of the MJCF parser.
USD_EXTENSIONS = (".usd", ".usda", ".usdc")


def load_usd_spec(path: str) -> mujoco.MjSpec:
    """The model spec of the USD file ``path`` (see the module docstring).

    Raises:
        ValueError: one line naming the file, if MuJoCo has no USD decoder here or cannot decode or compile it
            (MuJoCo's message included), pointing to the MJCF as the alternative.
    """
    try:
        spec = mujoco.MjSpec.from_file(path)
        for body in spec.bodies:
            if not np.isnan(body.fullinertia[0]) and np.any(body.inertia):
                body.fullinertia[:] = np.nan
        for mesh in spec.meshes:
            if len(mesh.userfacetexcoord):  # unweld: corner k of the faces becomes vertex k
                corners = np.asarray(mesh.userface).ravel()
                uv = np.asarray(mesh.usertexcoord).reshape(-1, 2)[np.asarray(mesh.userfacetexcoord).ravel()]
                mesh.uservert = np.asarray(mesh.uservert).reshape(-1, 3)[corners].ravel().tolist()
                mesh.usertexcoord = uv.ravel().tolist()
                mesh.userface = list(range(len(corners)))
                mesh.userfacetexcoord = []
        return _short_names(spec)
    except ValueError as err:
        hint = ("install mujoco-usd==4.0.0 (pip install -e . does)" if "could not find decoder" in str(err) else
                "MuJoCo's USD decoder cannot read this asset")
        message = " ".join(str(err).split())
        raise ValueError(f"Cannot load the USD file '{path}': {message} ({hint}); load the MJCF it was exported "
                         "from instead (the task's asset_path, e.g. env.robot.asset_path).") from None


def _short_names(spec: mujoco.MjSpec) -> mujoco.MjSpec:
    """``spec`` rebuilt from its MJCF text with prim-path names shortened (see the module docstring)."""
    root = ET.fromstring(spec.to_xml())
    paths = collections.defaultdict(set)  # element tag -> its prim-path names
    for element in root.iter():
        name = element.get("name", "")
        if name.startswith("/"):
            paths[element.tag].add(name)
    clashing = set()
    for names in paths.values():
        counts = collections.Counter(n.rsplit("/", 1)[1] for n in names)
        clashing |= {n for n in names if counts[n.rsplit("/", 1)[1]] > 1}
    short = {n: n.rsplit("/", 1)[1] for names in paths.values() for n in names if n not in clashing}
    for element in root.iter():
        for key, value in element.attrib.items():
            if value in short:
                element.set(key, short[value])
    return mujoco.MjSpec.from_string(ET.tostring(root, encoding="unicode"))
