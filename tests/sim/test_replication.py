"""Replication of a single-env model into N copies (MuJoCo C backend): every name and reference renamed per copy.

Model: ``tests/assets/crossref.xml``, which uses every kind of cross-reference MJCF allows (site actuators with a
``refsite``, slider-crank, body and ``jointinparent`` transmissions, site welds, joint/tendon/body equalities, tendons
with side sites, sensors with ``objname``/``refname`` and geom/body pairs, contact pairs with the shared floor,
exclusions, camera and light targets).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import mujoco
import numpy as np
import pytest
import torch

from foundation.sim import make_backend
from foundation.sim.mujoco_c import reference_attributes, replicate_spec
from tests.conftest import ASSETS_DIR

CROSSREF_XML = ASSETS_DIR / "crossref.xml"
N = 3
STEPS = 250  # 0.5 s: the ball lands, the weld pulls, the crank turns
#: Per-env controls (pull, m1, tendon_motor, crank, stick, hang), all different.
CTRL = np.array([[1.5, 0.5, 0.3, 0.8, 1.0, 0.5],
                 [-1.0, -0.4, 0.6, -0.5, 0.0, -0.7],
                 [0.3, 0.9, -0.8, 0.2, 0.6, 0.9]])


def crossref_spec() -> mujoco.MjSpec:
    return mujoco.MjSpec.from_file(str(CROSSREF_XML))


def object_names(model: mujoco.MjModel) -> set[str]:
    """Every name of the compiled model (objects, assets, the model's own), from MuJoCo's name buffer."""
    return {name.decode() for name in bytes(model.names).split(b"\x00") if name}


def test_reference_attributes_include_every_reference_kind_of_the_model():
    refs = reference_attributes(crossref_spec())
    # The kinds the former hand-kept list missed, and the ones it had.
    for pair in [("general", "site"), ("general", "refsite"), ("general", "cranksite"), ("general", "slidersite"),
                 ("general", "body"), ("general", "jointinparent"), ("general", "joint"), ("general", "tendon"),
                 ("weld", "site1"), ("weld", "site2"), ("connect", "body1"), ("connect", "body2"),
                 ("joint", "joint1"), ("joint", "joint2"), ("tendon", "tendon1"), ("tendon", "tendon2"),
                 ("geom", "sidesite"), ("geom", "geom"), ("site", "site"), ("joint", "joint"),
                 ("framepos", "objname"), ("framepos", "refname"), ("touch", "site"), ("force", "site"),
                 ("jointpos", "joint"), ("tendonpos", "tendon"), ("actuatorfrc", "actuator"),
                 ("distance", "geom1"), ("distance", "geom2"), ("contact", "body1"),
                 ("pair", "geom1"), ("pair", "geom2"), ("exclude", "body1"), ("exclude", "body2"),
                 ("camera", "target"), ("light", "target"), ("body", "name"), ("site", "name")]:
        assert pair in refs, pair


def test_every_attribute_whose_value_names_an_object_is_a_reference():
    """Independent of MuJoCo's attach: any attribute of the written MJCF whose value is the name of an object of the
    model (and not a number or keyword) must be among the renamed attributes, or a copy would point at copy 0."""
    spec = crossref_spec()
    refs = reference_attributes(spec)
    names = object_names(spec.compile())
    root = ET.fromstring(spec.to_xml())
    looks_like_ref = {(el.tag, attr) for section in root if section.tag not in ("asset", "default")
                      for el in section.iter() for attr, value in el.attrib.items()
                      if value in names and value != "world"}
    assert looks_like_ref, "the model has references: the check must not be vacuous"
    assert looks_like_ref <= refs, looks_like_ref - refs


@pytest.mark.parametrize("backend", ["mujoco", "mujoco_batch"])
def test_each_replicated_copy_moves_and_senses_exactly_as_the_single_model(backend):
    b = make_backend(crossref_spec(), N, backend, env_spacing=2.0)
    b.ctrl[:] = torch.from_numpy(CTRL)
    for _ in range(STEPS):
        b.step()
    model = crossref_spec().compile()
    cols = b.free_pos_cols
    for i in range(N):
        data = mujoco.MjData(model)
        data.ctrl[:] = CTRL[i]
        for _ in range(STEPS):
            mujoco.mj_step(model, data)
        qpos = b.qpos[i].numpy().copy()
        qpos[cols] -= b.env_origins[i].double().repeat(len(cols) // 3).numpy()
        np.testing.assert_allclose(qpos, data.qpos, atol=1e-6, rtol=0, err_msg=f"qpos of env {i}")
        np.testing.assert_allclose(b.qvel[i].numpy(), data.qvel, atol=1e-5, rtol=0, err_msg=f"qvel of env {i}")
        np.testing.assert_allclose(b.sensordata[i].numpy(), data.sensordata, atol=1e-4, rtol=1e-6,
                                   err_msg=f"sensordata of env {i}")
    # Not a trivial comparison: the joints moved, the ball touches the ground, the sensors read something.
    assert np.abs(b.qpos[:, :2].numpy()).max() > 0.1
    assert b.sensordata[:, b.sensor_slice("ball_touch")].min() > 0
    assert not torch.allclose(b.sensordata[0], b.sensordata[1])


def test_assets_named_like_objects_stay_shared_and_the_objects_are_renamed():
    """Menagerie's Panda names meshes after bodies (mesh and body "link1"): asset references stay shared, object
    references are renamed per copy."""
    spec = mujoco.MjSpec.from_string("""
        <mujoco><asset><material name="base" rgba="1 0 0 1"/><material name="arm" rgba="0 1 0 1"/></asset>
          <worldbody>
            <body name="base"><geom name="base" size="0.1" material="base"/>
              <body name="arm" pos="0 0 0.2"><joint name="arm" axis="0 1 0"/><geom size="0.05" material="arm"/></body>
            </body>
          </worldbody>
          <contact><exclude body1="base" body2="arm"/></contact>
          <actuator><motor name="arm" joint="arm"/></actuator>
        </mujoco>""")
    root = ET.fromstring(replicate_spec(spec, 2, 1.0).to_xml())
    model = replicate_spec(spec, 2, 1.0).compile()
    assert model.nmat == 2 and model.nexclude == 2 and model.nu == 2  # materials shared, the rest per copy
    excludes = [(el.get("body1"), el.get("body2")) for el in root.iter("exclude")]
    assert excludes == [("env0/base", "env0/arm"), ("env1/base", "env1/arm")]
    assert {el.get("material") for el in root.iter("geom")} == {"base", "arm"}
    assert [el.get("joint") for el in root.iter("general")] == ["env0/arm", "env1/arm"]


def test_a_referenced_name_of_both_a_shared_plane_and_an_object_is_an_error():
    spec = mujoco.MjSpec.from_string("""
        <mujoco><worldbody><geom name="table" type="plane" size="1 1 0.1"/>
          <body name="table" pos="0 0 0.5"><freejoint/><geom name="box" size="0.1"/></body>
          <body name="other" pos="0 0 1"><freejoint/><geom size="0.1"/></body></worldbody>
          <contact><exclude body1="table" body2="other"/></contact>
        </mujoco>""")
    with pytest.raises(ValueError, match=r"\['table'\] are referenced and used both by a shared world plane"):
        replicate_spec(spec, 2, 1.0)
