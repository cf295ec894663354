"""What a manipulator task reads from a backend: name lookups, Jacobians, sensors, contact penetration, fused steps,
and the solver options of the cfg. Checked against MuJoCo's own functions on a plain ``MjData`` (MuJoCo C backends;
MuJoCo Warp is compared in ``test_backend_agreement.py``, to keep its kernel compilations to one model).
"""

from __future__ import annotations

import mujoco
import numpy as np
import pytest
import torch

from foundation.sim import MujocoCfg, make_backend
from tests.conftest import ARM_XML
from tests.sim.test_replication import CROSSREF_XML

CPU_BACKENDS = ["mujoco", "mujoco_batch"]
N = 3
#: Joint targets per env: 0 and 1 press the forearm onto the box (from step ~30 on), 2 lifts the arm away.
TARGETS = np.array([[0.0, 0.6, 0.5], [0.0, 0.5, 0.9], [-0.8, -1.0, 0.5]])


def arm_spec() -> mujoco.MjSpec:
    return mujoco.MjSpec.from_file(str(ARM_XML))


def single_run(spec: mujoco.MjSpec, ctrl: np.ndarray, steps: int) -> tuple[mujoco.MjModel, mujoco.MjData]:
    """A plain MjData of the single-env model after ``steps`` mj_step with constant ``ctrl``."""
    model = spec.compile()
    data = mujoco.MjData(model)
    data.ctrl[:] = ctrl
    for _ in range(steps):
        mujoco.mj_step(model, data)
    return model, data


def run(backend: str, steps: int = 60):
    b = make_backend(arm_spec(), N, backend, env_spacing=2.0)
    b.ctrl[:] = torch.from_numpy(TARGETS)
    b.step(steps)
    return b


# -------------------------------------------------------------------------------------------------- name lookups
def test_name_lookups_give_the_model_columns_and_indices():
    b = make_backend(mujoco.MjSpec.from_file(str(CROSSREF_XML)), 2, "mujoco", env_spacing=2.0)
    m = b.model
    ball_q, ball_v = int(m.jnt_qposadr[m.joint("ball_root").id]), int(m.jnt_dofadr[m.joint("ball_root").id])
    assert b.joint_qpos_cols(["j2", "ball_root", "j1"]) == [1, *range(ball_q, ball_q + 7), 0]
    assert b.joint_dof_cols(["j2", "ball_root", "j1"]) == [1, *range(ball_v, ball_v + 6), 0]
    assert b.actuator_ids(["crank", "pull"]) == [3, 0]
    assert b.body_index("link2") == m.body("link2").id - 1 and b.body_names[b.body_index("link2")] == "link2"
    assert b.site_names[b.site_index("tip")] == "tip"
    assert b.sensor_slice("wrist_force") == slice(int(m.sensor_adr[2]), int(m.sensor_adr[2]) + 3)
    assert b.sensor_slice("j2_pos").stop - b.sensor_slice("j2_pos").start == 1
    assert b.geom_ids(["ball_geom", "floor"]) == [m.geom("ball_geom").id, m.geom("floor").id]
    assert b.body_geom_ids("link1") == [m.geom("link1_geom").id, m.geom("wrap_cyl").id]


@pytest.mark.parametrize("lookup, kind", [("joint_qpos_cols", "joint"), ("joint_dof_cols", "joint"),
                                          ("actuator_ids", "actuator"), ("geom_ids", "geom")])
def test_unknown_names_are_errors_listing_the_valid_ones(lookup, kind):
    b = make_backend(arm_spec(), 1, "mujoco")
    with pytest.raises(ValueError, match=f"no {kind} named 'nope'. Valid: "):
        getattr(b, lookup)(["nope"])
    for lookup1 in ("body_index", "site_index", "sensor_slice", "body_geom_ids"):
        with pytest.raises(ValueError, match="named 'nope'"):
            getattr(b, lookup1)("nope")
    with pytest.raises(ValueError, match="world body"):
        b.body_index("world")


# ---------------------------------------------------------------------------------------------------- Jacobians
@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_site_and_body_jacobians_equal_mujocos(backend):
    """After kinematics(), the Jacobians of every site and body equal mj_jacSite / mj_jacBody at each env's qpos."""
    b = run(backend)
    b.qvel[:, 6:9] = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)  # spin the boxes: their J is not identity
    b.step(20)
    b.kinematics()
    m = b.model
    data = mujoco.MjData(m)
    jacp, jacr = np.zeros((3, m.nv)), np.zeros((3, m.nv))
    for i in range(N):
        data.qpos[:] = b.qpos[i].numpy()
        data.qpos[b.free_pos_cols] -= b.env_origins[i].double().repeat(len(b.free_pos_cols) // 3).numpy()
        mujoco.mj_kinematics(m, data)
        mujoco.mj_comPos(m, data)
        for s in range(m.nsite):
            mujoco.mj_jacSite(m, data, jacp, jacr, s)
            np.testing.assert_allclose(b.site_jacobian(s)[i].numpy(), np.vstack([jacp, jacr]), atol=1e-12, rtol=0)
        for k in range(m.nbody - 1):
            mujoco.mj_jacBody(m, data, jacp, jacr, k + 1)
            np.testing.assert_allclose(b.body_jacobian(k)[i].numpy(), np.vstack([jacp, jacr]), atol=1e-12, rtol=0)
    assert b.site_jacobian(0).shape == (N, 6, m.nv)
    assert b.site_jacobian(b.site_index("ee"))[:, :3, :3].abs().amax() > 0.1  # the arm's columns are not zero
    with pytest.raises(IndexError):
        b.site_jacobian(m.nsite)
    with pytest.raises(IndexError):
        b.body_jacobian(-1)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_site_jacobian_predicts_the_site_velocity(backend):
    """J(q) qdot is the site's world velocity: compare with the finite difference of its position over one step."""
    b = make_backend(arm_spec(), N, backend, env_spacing=2.0)
    b.qvel[:, :3] = torch.from_numpy(TARGETS)  # joint rates, rad/s; no contact within the step
    b.kinematics()
    ee = b.site_index("ee")
    pos0 = b.site_pos_w[:, ee].clone()
    predicted = (b.site_jacobian(ee) @ b.qvel.unsqueeze(-1)).squeeze(-1)[:, :3]
    dt = 1e-6
    b.qpos[:, :3] += dt * b.qvel[:, :3]
    b.kinematics()
    torch.testing.assert_close((b.site_pos_w[:, ee] - pos0) / dt, predicted, atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------------------------------ sensors, contacts
@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_max_penetration_is_the_deepest_contact_between_the_geom_sets(backend):
    steps = 80
    b = run(backend, steps)
    box, floor, forearm = b.geom_ids(["box"]), b.geom_ids(["floor"]), b.geom_ids(["forearm"])
    arm = b.body_geom_ids("link3") + b.body_geom_ids("link2")
    got = {"box-floor": b.max_penetration(box, floor), "arm-box": b.max_penetration(arm, box),
           "box-arm": b.max_penetration(box, arm), "forearm-floor": b.max_penetration(forearm, floor)}
    for i in range(N):
        model, data = single_run(arm_spec(), TARGETS[i], steps - 1)
        mujoco.mj_forward(model, data)  # the contacts of the last step's collision detection
        pairs = [(int(c.geom[0]), int(c.geom[1]), c.dist) for c in data.contact[:data.ncon]]

        def deepest(a, c):
            return max([max(0.0, -d) for g1, g2, d in pairs if (g1 in a and g2 in c) or (g1 in c and g2 in a)],
                       default=0.0)

        # MuJoCo C's copies come from the MJCF text (6 significant digits): 1e-6 m of tolerance.
        assert got["box-floor"][i].item() == pytest.approx(deepest(box, floor), abs=1e-6)
        assert got["arm-box"][i].item() == pytest.approx(deepest(arm, box), abs=1e-6)
        assert got["forearm-floor"][i].item() == pytest.approx(deepest(forearm, floor), abs=1e-6)
        assert b.num_contacts()[i].item() == data.ncon
    assert torch.equal(got["arm-box"], got["box-arm"])
    assert (got["box-floor"] > 1e-5).all()  # the boxes rest on the floor: MuJoCo's soft contacts overlap a little
    assert got["arm-box"][2] == 0 and got["arm-box"][:2].max() > 0  # env 2 lifted its arm; 0 and 1 press the box
    with pytest.raises(ValueError, match="non-empty geom ids"):
        b.max_penetration([], floor)
    with pytest.raises(ValueError, match="non-empty geom ids"):
        b.max_penetration(box, [b.model.ngeom])


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_sensordata_is_each_envs_sensors_at_the_start_of_the_last_step(backend):
    b = make_backend(mujoco.MjSpec.from_file(str(CROSSREF_XML)), 2, backend, env_spacing=2.0)
    b.ctrl[1, b.actuator_ids(["m1", "pull"])] = torch.tensor([1.0, 2.0], dtype=torch.float64)
    b.step(49)
    before = b.qpos[:, b.joint_qpos_cols(["j1", "j2"])].clone()
    b.step()
    assert b.sensordata.shape == (2, b.model.nsensordata) and b.sensordata.dtype == torch.float64
    # Sensors are computed at the start of mj_step, as body poses are: one step behind qpos.
    torch.testing.assert_close(b.sensordata[:, b.sensor_slice("j2_pos")].squeeze(1), before[:, 1], atol=1e-12, rtol=0)
    assert b.sensordata[1, b.sensor_slice("pull_frc")].item() != 0.0  # env 1 pulls, env 0 does not
    assert b.sensordata[0, b.sensor_slice("pull_frc")].item() == 0.0
    assert (before[1] - before[0]).abs().max() > 0.01  # env 1's motor turned its arm


# ------------------------------------------------------------------------------------------------ fused steps
@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_step_nstep_equals_nstep_single_steps(backend):
    a, b = make_backend(arm_spec(), N, backend, env_spacing=2.0), make_backend(arm_spec(), N, backend, env_spacing=2.0)
    for x in (a, b):
        x.ctrl[:] = torch.from_numpy(TARGETS)
    for _ in range(5):
        a.step(4)
        for _ in range(4):
            b.step()
    assert torch.equal(a.qpos, b.qpos) and torch.equal(a.qvel, b.qvel) and torch.equal(a.body_pos_w, b.body_pos_w)
    assert make_backend(arm_spec(), 1, "mujoco_batch").fuses_substeps
    assert not make_backend(arm_spec(), 1, "mujoco").fuses_substeps


# ------------------------------------------------------------------------------------------------ solver options
def test_mujoco_cfg_writes_only_the_fields_it_sets():
    spec = arm_spec()
    before = spec.compile().opt
    MujocoCfg(cone="elliptic", impratio=10.0, iterations=7, integrator="implicitfast", gravity=(0.0, 0.0, -1.0),
              noslip_iterations=2).apply_to(spec)
    opt = spec.compile().opt
    assert opt.cone == mujoco.mjtCone.mjCONE_ELLIPTIC and opt.impratio == 10.0 and opt.iterations == 7
    assert opt.integrator == mujoco.mjtIntegrator.mjINT_IMPLICITFAST and opt.noslip_iterations == 2
    np.testing.assert_array_equal(opt.gravity, [0.0, 0.0, -1.0])
    # Unset fields keep the MJCF's (here MuJoCo's default) values.
    assert opt.tolerance == before.tolerance and opt.ls_iterations == before.ls_iterations
    assert opt.timestep == before.timestep and opt.solver == before.solver


def test_mujoco_cfg_rejects_values_out_of_range_naming_them():
    with pytest.raises(ValueError, match=r"impratio=0.5: must be >= 1.0.*cone='round': must be one of"):
        MujocoCfg(impratio=0.5, cone="round").apply_to(arm_spec())
