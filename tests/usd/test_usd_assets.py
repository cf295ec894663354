"""The committed USD assets (``USD/<asset>/``) describe the same physics as the MJCF they were exported from.

Every asset of ``scripts/export_usd.py``'s table is opened with ``pxr`` (``usd-core``, no converter needed) and
compared with the ``MjModel`` that MuJoCo compiles from its MJCF: rigid bodies (one per MuJoCo body but the world,
by name), mass, centre of mass and inertia tensor of each, collision shapes, and each hinge/slide/ball joint's
body, axis, anchor and limits. A free joint has no USD prim (a USD rigid body is free unless jointed).

Tolerances: USD stores these as 32-bit floats, so quantities are compared to a relative 1e-6 (inertia: of the
tensor's largest entry), positions to 1e-6 m, axes to 1e-6, limits to 1e-4 degrees (revolute; USD's unit) or
1e-6 m (prismatic).
"""

from __future__ import annotations

import importlib.util
import math
import pathlib

import mujoco
import numpy as np
import pytest

pxr = pytest.importorskip("pxr", reason="usd-core (pip install -e .) provides pxr")
from pxr import Usd, UsdGeom, UsdPhysics  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[2]
USD_DIR = REPO / "USD"


def _export_table() -> dict[str, str]:
    """``ASSETS`` of scripts/export_usd.py (asset name -> MJCF path), read without running the converter."""
    spec = importlib.util.spec_from_file_location("export_usd", REPO / "scripts" / "export_usd.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ASSETS


ASSETS = _export_table()


def _root_file(name: str) -> pathlib.Path:
    """The asset's entry file ``USD/<name>/<model>.usda`` (the only layer at the top of its folder)."""
    files = sorted((USD_DIR / name).glob("*.usd*"))
    assert len(files) == 1, f"USD/{name}/ should hold exactly one top-level layer, has {files}"
    return files[0]


def _name(prim: Usd.Prim) -> str:
    """The MJCF name of a converted prim (the converter keeps it as display name when it had to rename)."""
    return prim.GetDisplayName() or prim.GetName()


def _quat_wxyz(q) -> np.ndarray:
    return np.array([q.GetReal(), *q.GetImaginary()], dtype=np.float64)


def _rotmat(quat_wxyz: np.ndarray) -> np.ndarray:
    mat = np.zeros(9)
    mujoco.mju_quat2Mat(mat, np.asarray(quat_wxyz, np.float64) / np.linalg.norm(quat_wxyz))
    return mat.reshape(3, 3)


def _body_mass(body: Usd.Prim) -> float:
    """The mass authored on a rigid body, or else the sum of the masses authored on its own colliders, kg."""
    mass_api = UsdPhysics.MassAPI(body)
    if body.HasAPI(UsdPhysics.MassAPI) and mass_api.GetMassAttr().HasAuthoredValue():
        return float(mass_api.GetMassAttr().Get())
    total, missing = 0.0, []
    for prim in Usd.PrimRange(body):
        if prim.HasAPI(UsdPhysics.CollisionAPI) and _owner(prim) == body:
            attr = UsdPhysics.MassAPI(prim).GetMassAttr()
            if attr.HasAuthoredValue():
                total += float(attr.Get())
            else:
                missing.append(str(prim.GetPath()))
    assert not missing, f"{body.GetPath()}: no mass authored on the body nor on colliders {missing}"
    return total


def _owner(prim: Usd.Prim) -> Usd.Prim:
    """The nearest rigid-body ancestor of ``prim`` (itself included)."""
    while prim and not prim.HasAPI(UsdPhysics.RigidBodyAPI):
        prim = prim.GetParent()
    return prim


@pytest.fixture(params=sorted(ASSETS), scope="module")
def asset(request) -> tuple[str, Usd.Stage, mujoco.MjModel]:
    """``(name, USD stage, MjModel of its MJCF)`` for each asset."""
    name = request.param
    stage = Usd.Stage.Open(str(_root_file(name)))
    assert stage is not None
    return name, stage, mujoco.MjModel.from_xml_path(str(REPO / ASSETS[name]))


def test_every_usd_folder_is_an_exported_asset():
    folders = sorted(p.name for p in USD_DIR.iterdir() if p.is_dir())
    assert folders == sorted(ASSETS), "USD/ and ASSETS of scripts/export_usd.py disagree"
    assert (USD_DIR / "README.md").is_file()


def test_stage_units_and_default_prim(asset):
    name, stage, model = asset
    assert UsdGeom.GetStageMetersPerUnit(stage) == 1.0
    assert UsdPhysics.GetStageKilogramsPerUnit(stage) == 1.0
    assert UsdGeom.GetStageUpAxis(stage) == UsdGeom.Tokens.z
    assert stage.GetDefaultPrim().IsValid()
    scenes = [p for p in stage.Traverse() if p.IsA(UsdPhysics.Scene)]
    assert len(scenes) == 1
    scene = UsdPhysics.Scene(scenes[0])
    gravity = np.array(scene.GetGravityDirectionAttr().Get()) * scene.GetGravityMagnitudeAttr().Get()
    np.testing.assert_allclose(gravity, model.opt.gravity, rtol=1e-6, atol=1e-6)


def test_bodies_masses_and_inertias(asset):
    name, stage, model = asset
    bodies = {_name(p): p for p in stage.Traverse() if p.HasAPI(UsdPhysics.RigidBodyAPI)}
    mj_names = [model.body(i).name for i in range(1, model.nbody)]
    assert len(bodies) == model.nbody - 1, f"{name}: {len(bodies)} rigid bodies, MuJoCo has {model.nbody - 1}"
    assert sorted(bodies) == sorted(mj_names)
    for i, body_name in enumerate(mj_names, start=1):
        prim = bodies[body_name]
        mass = _body_mass(prim)
        assert mass == pytest.approx(model.body_mass[i], rel=1e-6), body_name
        mass_api = UsdPhysics.MassAPI(prim)
        if not mass_api.GetDiagonalInertiaAttr().HasAuthoredValue():
            continue  # inertia from the colliders' shapes (checked by the engine, not authored)
        com = np.array(mass_api.GetCenterOfMassAttr().Get(), dtype=np.float64)
        np.testing.assert_allclose(com, model.body_ipos[i], atol=1e-6, err_msg=body_name)
        # Compare full tensors in the body frame: principal-axis order and sign are free in both descriptions.
        rot_usd = _rotmat(_quat_wxyz(mass_api.GetPrincipalAxesAttr().Get()))
        tensor_usd = rot_usd @ np.diag(np.array(mass_api.GetDiagonalInertiaAttr().Get(), np.float64)) @ rot_usd.T
        rot_mj = _rotmat(model.body_iquat[i])
        tensor_mj = rot_mj @ np.diag(model.body_inertia[i]) @ rot_mj.T
        np.testing.assert_allclose(tensor_usd, tensor_mj, rtol=0, atol=1e-6 * np.abs(tensor_mj).max(),
                                   err_msg=body_name)


def test_crazyflie_is_one_free_body_of_27_grams():
    """The numbers of cf2x.urdf (gym-pybullet-drones): 0.027 kg, I = diag(1.4e-5, 1.4e-5, 2.17e-5) kg·m²."""
    if "crazyflie" not in ASSETS:
        pytest.skip("no crazyflie asset")
    stage = Usd.Stage.Open(str(_root_file("crazyflie")))
    bodies = [p for p in stage.Traverse() if p.HasAPI(UsdPhysics.RigidBodyAPI)]
    assert [_name(p) for p in bodies] == ["cf2x"]
    assert not [p for p in stage.Traverse() if p.IsA(UsdPhysics.Joint)]  # free: no joint prim
    mass_api = UsdPhysics.MassAPI(bodies[0])
    assert mass_api.GetMassAttr().Get() == pytest.approx(0.027, rel=1e-6)
    np.testing.assert_allclose(mass_api.GetDiagonalInertiaAttr().Get(), [1.4e-5, 1.4e-5, 2.17e-5], rtol=1e-6)


def test_joints_axes_anchors_and_limits(asset):
    name, stage, model = asset
    kinds = {int(mujoco.mjtJoint.mjJNT_HINGE): UsdPhysics.RevoluteJoint, int(mujoco.mjtJoint.mjJNT_SLIDE):
             UsdPhysics.PrismaticJoint, int(mujoco.mjtJoint.mjJNT_BALL): UsdPhysics.SphericalJoint}
    joints = {_name(p): p for p in stage.Traverse() if p.IsA(UsdPhysics.Joint) and not p.IsA(UsdPhysics.FixedJoint)}
    mj_joints = [j for j in range(model.njnt) if model.jnt_type[j] != mujoco.mjtJoint.mjJNT_FREE]
    assert len(joints) == len(mj_joints), f"{name}: {len(joints)} USD joints, MuJoCo has {len(mj_joints)}"
    # A MuJoCo body without joints is welded to its parent: one USD fixed joint each (world children included).
    welded = sum(1 for b in range(1, model.nbody) if model.body_jntnum[b] == 0)
    assert sum(1 for p in stage.Traverse() if p.IsA(UsdPhysics.FixedJoint)) == welded
    for j in mj_joints:
        jname = model.joint(j).name
        prim = joints[jname]
        assert prim.IsA(kinds[int(model.jnt_type[j])]), f"{jname}: {prim.GetTypeName()}"
        joint = UsdPhysics.Joint(prim)
        body1 = stage.GetPrimAtPath(joint.GetBody1Rel().GetTargets()[0])
        assert _name(body1) == model.body(model.jnt_bodyid[j]).name, jname
        np.testing.assert_allclose(np.array(joint.GetLocalPos1Attr().Get(), np.float64), model.jnt_pos[j],
                                   atol=1e-6, err_msg=jname)
        if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_BALL:
            continue
        typed = kinds[int(model.jnt_type[j])](prim)
        unit = {"X": (1, 0, 0), "Y": (0, 1, 0), "Z": (0, 0, 1)}[typed.GetAxisAttr().Get()]
        axis_body1 = _rotmat(_quat_wxyz(joint.GetLocalRot1Attr().Get())) @ np.array(unit, np.float64)
        np.testing.assert_allclose(axis_body1, model.jnt_axis[j], atol=1e-6, err_msg=jname)
        lower, upper = typed.GetLowerLimitAttr().Get(), typed.GetUpperLimitAttr().Get()
        if not model.jnt_limited[j]:
            assert lower is None or math.isinf(lower), jname
            continue
        revolute = model.jnt_type[j] == mujoco.mjtJoint.mjJNT_HINGE
        expected = np.degrees(model.jnt_range[j]) if revolute else model.jnt_range[j]
        np.testing.assert_allclose([lower, upper], expected, atol=1e-4 if revolute else 1e-6, err_msg=jname)


def test_collision_shapes(asset):
    name, stage, model = asset
    colliders = [p for p in stage.Traverse() if p.HasAPI(UsdPhysics.CollisionAPI)]
    colliding = [g for g in range(model.ngeom) if model.geom_contype[g] or model.geom_conaffinity[g]]
    assert len(colliders) == len(colliding), f"{name}: {len(colliders)} USD colliders, MuJoCo {len(colliding)}"


def test_geometry_counts(asset):
    """Every MJCF geom (visual or collider) and every site is a geometric prim; sites have the "guide" purpose."""
    name, stage, model = asset
    gprims = [p for p in stage.Traverse() if p.IsA(UsdGeom.Gprim)]
    assert len(gprims) == model.ngeom + model.nsite, f"{name}: {len(gprims)} gprims"
    site_names = {model.site(i).name for i in range(model.nsite)}
    sites = [p for p in gprims if _name(p) in site_names]
    assert len(sites) == model.nsite
    assert all(UsdGeom.Imageable(p).GetPurposeAttr().Get() == UsdGeom.Tokens.guide for p in sites)


def test_usd_loads_back_into_mujoco(asset):
    """MuJoCo's own USD decoder (``foundation.sim.load_spec``) reads the asset back: same bodies, masses, joints.

    Masses and inertias to a relative 1e-5 (32-bit floats in USD, 6 significant digits in the MJCF text the spec is
    rebuilt from), joint ranges to 1e-6 rad or m.
    """
    from foundation.sim import load_spec

    name, _, model = asset
    back = load_spec(str(_root_file(name))).compile()
    assert [back.body(i).name for i in range(back.nbody)] == [model.body(i).name for i in range(model.nbody)]
    np.testing.assert_allclose(back.body_mass, model.body_mass, rtol=1e-5)
    np.testing.assert_allclose(np.sort(back.body_inertia, axis=1), np.sort(model.body_inertia, axis=1), rtol=1e-5)
    assert [back.joint(j).name for j in range(back.njnt) if back.jnt_type[j]] == \
        [model.joint(j).name for j in range(model.njnt) if model.jnt_type[j]]  # free joints come back unnamed
    np.testing.assert_array_equal(back.jnt_type, model.jnt_type)
    np.testing.assert_allclose(back.jnt_range, model.jnt_range, atol=1e-6)
    assert [back.site(i).name for i in range(back.nsite)] == [model.site(i).name for i in range(model.nsite)]
    np.testing.assert_allclose(back.site_pos, model.site_pos, atol=1e-6)


def test_missing_usd_decoder_is_one_clear_line(monkeypatch, tmp_path):
    from foundation.sim import load_spec

    def no_decoder(path):
        raise ValueError("Error: could not find decoder for file extension 'usda'")

    monkeypatch.setattr(mujoco.MjSpec, "from_file", no_decoder)
    path = tmp_path / "robot.usda"
    path.write_text("#usda 1.0\n")
    with pytest.raises(ValueError, match="mujoco-usd==4.0.0.*env.robot.asset_path") as err:
        load_spec(str(path))
    assert "\n" not in str(err.value)
