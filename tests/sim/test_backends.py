"""Physics backends: the batched-state contract of MuJoCo C (N copies in one model), MuJoCo batch (N simulations on a
thread pool) and MuJoCo Warp (N worlds).

Models: the Crazyflie (one free body, no contacts) shipped with the package, and ``tests/assets/arm.xml`` (a 3-joint
position-controlled arm on a ground plane with a free box it can touch: joints, actuators, contacts, sites).
"""

from __future__ import annotations


import mujoco
import numpy as np
import pytest
import torch

from foundation.assets import asset_path
from foundation.sim import make_backend
from tests.conftest import ARM_XML, ASSETS_DIR

#: The MuJoCo C backends: one model of N copies, and N simulations on a thread pool.
CPU_BACKENDS = ["mujoco", "mujoco_batch"]
N = 4
SPACING = 2.0  # m; the arm reaches less than 0.7 m, so neighbouring copies are far apart
ARM_TARGETS = torch.tensor([[0.3, 0.9, 0.6],     # pitches the forearm down onto the box
                            [0.3, 0.9, 0.6],     # same as env 0
                            [-0.8, -1.0, 0.5],   # turns and lifts the arm away from the box
                            [0.0, 0.0, 0.0]],    # holds the initial pose
                           dtype=torch.float64)
BOX_MASS = 0.1  # kg, arm.xml


def arm_spec() -> mujoco.MjSpec:
    return mujoco.MjSpec.from_file(str(ARM_XML))


def crazyflie_spec() -> mujoco.MjSpec:
    return mujoco.MjSpec.from_file(str(asset_path("crazyflie/cf2x.xml")))


def free_pos_cols(model: mujoco.MjModel) -> list[int]:
    """qpos columns holding the x, y, z of each free joint."""
    return [int(model.jnt_qposadr[j]) + k for j in range(model.njnt)
            if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_FREE for k in range(3)]


def local_qpos(b) -> torch.Tensor:
    """(N, nq) float64 qpos with the env origins removed from free-joint positions (env-frame state)."""
    q = b.qpos.detach().double().clone()
    cols = free_pos_cols(b.model)
    q[:, cols] -= b.env_origins.double().repeat(1, len(cols) // 3)
    return q


def body_index(b, name: str) -> int:
    return b.body_names.index(name)


def box_dof(b) -> int:
    return int(b.model.body_dofadr[b.model.body("box").id])


def box_qadr(b) -> int:
    return int(b.model.jnt_qposadr[b.model.joint("box_root").id])


def rotmat(quat) -> np.ndarray:
    m = np.zeros(9)
    mujoco.mju_quat2Mat(m, np.asarray(quat, dtype=np.float64))
    return m.reshape(3, 3)


# ------------------------------------------------------------------------------------------------ shapes, dtypes
@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("name, spec_fn, sizes", [
    ("crazyflie", crazyflie_spec, dict(nq=7, nv=6, nu=0, nbody=1, nsite=5)),
    ("arm", arm_spec, dict(nq=10, nv=9, nu=3, nbody=5, nsite=2)),
])
def test_cpu_backend_state_shapes_dtypes_and_initial_state(backend, name, spec_fn, sizes):
    b = make_backend(spec_fn(), N, backend, "cpu", env_spacing=SPACING)
    nq, nv, nu, nb, ns = (sizes[k] for k in ("nq", "nv", "nu", "nbody", "nsite"))
    expected = {"qpos": (N, nq), "qvel": (N, nv), "ctrl": (N, nu), "qfrc_applied": (N, nv),
                "xfrc_applied": (N, nb, 6), "body_pos_w": (N, nb, 3), "body_quat_w": (N, nb, 4),
                "site_pos_w": (N, ns, 3), "site_xmat_w": (N, ns, 9), "sensordata": (N, 0)}
    for attr, shape in expected.items():
        t = getattr(b, attr)
        assert tuple(t.shape) == shape, attr
        assert t.dtype == torch.float64, attr  # MuJoCo C works in double precision
        assert t.device == torch.device("cpu"), attr
    assert tuple(b.env_origins.shape) == (N, 3)
    assert len(b.body_names) == nb and "world" not in b.body_names
    assert len(b.site_names) == ns
    # Every env starts at the model's default state, placed at its own origin, at rest, with no inputs.
    default = torch.as_tensor(b.model.qpos0, dtype=torch.float64).expand(N, -1)
    torch.testing.assert_close(local_qpos(b), default, atol=1e-6, rtol=0)
    assert torch.count_nonzero(b.qvel) == 0 and torch.count_nonzero(b.ctrl) == 0
    assert torch.count_nonzero(b.qfrc_applied) == 0 and torch.count_nonzero(b.xfrc_applied) == 0
    torch.testing.assert_close(b.body_quat_w.norm(dim=-1), torch.ones(N, nb, dtype=torch.float64))


def test_warp_backend_state_shapes_and_dtypes():
    b = make_backend(arm_spec(), N, "mujoco_warp", "cpu")
    m = b.model
    for attr, shape in {"qpos": (N, m.nq), "qvel": (N, m.nv), "ctrl": (N, m.nu), "qfrc_applied": (N, m.nv),
                        "xfrc_applied": (N, m.nbody - 1, 6), "body_pos_w": (N, m.nbody - 1, 3),
                        "body_quat_w": (N, m.nbody - 1, 4), "site_pos_w": (N, m.nsite, 3),
                        "site_xmat_w": (N, m.nsite, 9)}.items():
        t = getattr(b, attr)
        assert tuple(t.shape) == shape, attr
        assert t.dtype == torch.float32, attr  # MuJoCo Warp works in single precision
    # Worlds are separate: every origin is zero.
    assert torch.count_nonzero(b.env_origins) == 0
    torch.testing.assert_close(b.qpos, torch.as_tensor(m.qpos0, dtype=torch.float32).expand(N, -1))


# ------------------------------------------------------------------------------------------------------ control
@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_ctrl_drives_joints_to_their_position_targets(backend):
    b = make_backend(arm_spec(), N, backend, env_spacing=SPACING)
    target = torch.tensor([0.8, -1.0, 0.5], dtype=torch.float64)  # away from the box: no contact on the way
    b.ctrl[:] = target
    initial_error = (b.qpos[:, :3] - target).abs().max().item()
    for _ in range(500):  # 1 s
        b.step()
    error = (b.qpos[:, :3] - target).abs().amax(dim=1)
    # Position servos (kp = 20 N·m/rad) settle near the target; what remains is the gravity sag kp cannot remove.
    assert initial_error == pytest.approx(1.0)
    assert (error < 0.1).all(), error
    assert (b.qvel[:, :3].abs() < 1e-3).all()  # settled, not swinging through


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_applied_forces_act_on_the_right_env_and_body(backend):
    """xfrc_applied[i, k] pushes body k of env i only; qfrc_applied[i, d] pushes dof d of env i only."""
    b = make_backend(arm_spec(), N, backend, env_spacing=SPACING)
    b.ctrl[:] = torch.tensor([0.0, -1.0, 0.0], dtype=torch.float64)  # lift the arm clear of the box
    box, dof, qz = body_index(b, "box"), box_dof(b), box_qadr(b) + 2
    lift = 1.5 * BOX_MASS * 9.81  # N: net upward acceleration g/2
    steps = 100
    for _ in range(steps):
        b.xfrc_applied[2, box, 2] = lift  # world-frame force on env 2's box
        b.qfrc_applied[1, dof + 2] = lift  # generalized force on the z dof of env 1's box (free joint: world frame)
        b.step()
    dt = b.model.opt.timestep
    # Semi-implicit Euler from rest: z rises by a dt² K(K+1)/2 after K steps.
    expected_rise = 0.5 * 9.81 / 2 * dt**2 * steps * (steps + 1)
    rise = b.qpos[:, qz] - 0.03
    assert rise[1].item() == pytest.approx(expected_rise, rel=0.05)
    assert rise[2].item() == pytest.approx(expected_rise, rel=0.05)
    assert rise[0].abs() < 1e-3 and rise[3].abs() < 1e-3  # resting on the ground


# -------------------------------------------------------------------------------------------------- write_state
@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_write_state_resets_only_the_given_envs_and_clears_their_inputs(backend):
    b = make_backend(arm_spec(), N, backend, env_spacing=SPACING)
    b.ctrl[:] = ARM_TARGETS
    for _ in range(100):
        b.step()
    b.qfrc_applied[:] = 0.01
    b.xfrc_applied[:] = 0.02
    before = {k: getattr(b, k).clone() for k in ("qpos", "qvel", "ctrl", "qfrc_applied", "xfrc_applied")}

    ids = torch.tensor([1, 3])
    qpos = torch.as_tensor(b.model.qpos0, dtype=torch.float64).repeat(2, 1)
    qpos[:, 0] = torch.tensor([0.25, -0.5])
    qpos[:, box_qadr(b):box_qadr(b) + 3] += b.env_origins[ids].double()
    qvel = torch.zeros(2, b.model.nv, dtype=torch.float64)
    qvel[:, 1] = torch.tensor([0.3, -0.2])
    b.write_state(ids, qpos, qvel)

    for k, old in before.items():
        now = getattr(b, k)
        assert torch.equal(now[[0, 2]], old[[0, 2]]), f"{k} of envs not reset changed"
    assert torch.equal(b.qpos[ids], qpos) and torch.equal(b.qvel[ids], qvel)
    for k in ("ctrl", "qfrc_applied", "xfrc_applied"):
        assert torch.count_nonzero(getattr(b, k)[ids]) == 0, f"{k} of reset envs not zeroed"
    b.kinematics()
    box_w = b.body_pos_w[ids, body_index(b, "box")]
    torch.testing.assert_close(box_w, b.env_origins[ids].double() + torch.tensor([0.35, 0.0, 0.03]).double())

    with pytest.raises(ValueError, match="write_state expects"):
        b.write_state(ids, qpos[:, :5], qvel)
    with pytest.raises(ValueError, match="write_state expects"):
        b.write_state(torch.tensor([0]), qpos, qvel)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_a_reset_env_carries_nothing_over_from_its_previous_episode(backend):
    """After write_state, an env evolves exactly as it does in a fresh backend (warm start and inputs cleared)."""
    used = make_backend(arm_spec(), N, backend, env_spacing=SPACING)
    used.ctrl[:] = ARM_TARGETS
    for _ in range(150):
        used.step()
    used.xfrc_applied[:, body_index(used, "box")] = torch.tensor([0.0, 0.0, 5.0, 0.0, 0.0, 0.0]).double()
    fresh = make_backend(arm_spec(), N, backend, env_spacing=SPACING)
    used.write_state(torch.arange(N), fresh.qpos.clone(), fresh.qvel.clone())
    for b in (used, fresh):
        b.ctrl[:] = ARM_TARGETS.flip(0)
        for _ in range(100):
            b.step()
    torch.testing.assert_close(used.qpos, fresh.qpos, atol=1e-6, rtol=0)
    torch.testing.assert_close(used.qvel, fresh.qvel, atol=1e-5, rtol=0)


# ------------------------------------------------------------------------------------------ env origins, isolation
@pytest.mark.parametrize("num_envs, spacing, cols", [(4, 2.0, 2), (9, 1.5, 3), (5, 3.0, 3)])
def test_env_origins_form_a_centred_grid_with_the_given_spacing(num_envs, spacing, cols):
    b = make_backend(arm_spec(), num_envs, "mujoco", env_spacing=spacing)
    o = b.env_origins.double()
    assert tuple(o.shape) == (num_envs, 3)
    assert torch.count_nonzero(o[:, 2]) == 0
    # Row-major grid of `cols` columns: env i sits at (i // cols, i % cols) * spacing, shifted to be centred.
    idx = torch.arange(num_envs)
    grid = torch.stack([idx // cols, idx % cols], dim=1).double() * spacing
    torch.testing.assert_close(o[:, :2], grid - grid.mean(dim=0), atol=1e-6, rtol=0)
    dist = torch.cdist(o, o) + torch.eye(num_envs, dtype=torch.float64) * 1e9
    assert dist.min().item() == pytest.approx(spacing)
    # Each copy is placed at its origin: the fixed pedestal body, the box, the end effector.
    torch.testing.assert_close(b.body_pos_w[:, body_index(b, "base")], o, atol=1e-6, rtol=0)
    torch.testing.assert_close(b.body_pos_w[:, body_index(b, "box")], o + torch.tensor([0.35, 0, 0.03]).double(),
                               atol=1e-6, rtol=0)
    torch.testing.assert_close(b.site_pos_w[:, b.site_names.index("ee")],
                               o + torch.tensor([0.45, 0, 0.25]).double(), atol=1e-6, rtol=0)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_copies_with_the_same_inputs_stay_identical_and_different_inputs_diverge(backend):
    b = make_backend(arm_spec(), N, backend, env_spacing=SPACING)
    b.ctrl[:] = ARM_TARGETS
    for _ in range(300):
        b.step()
    q, v = local_qpos(b), b.qvel
    torch.testing.assert_close(q[0], q[1], atol=1e-9, rtol=0)
    torch.testing.assert_close(v[0], v[1], atol=1e-9, rtol=0)
    assert (q[0, :3] - q[2, :3]).abs().max() > 0.5
    assert (q[0, :3] - q[3, :3]).abs().max() > 0.2


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_each_copy_moves_exactly_as_the_single_env_model(backend):
    """N copies in one model never interact: each evolves as a one-env backend does with the same controls.

    The arm's forearm lands on the box, which rests on the ground plane, so contacts with the ground matter.
    """
    b = make_backend(arm_spec(), N, backend, env_spacing=SPACING)
    b.ctrl[:] = ARM_TARGETS
    for _ in range(300):
        b.step()
    for i in range(N):
        single = make_backend(arm_spec(), 1, "mujoco")
        single.ctrl[:] = ARM_TARGETS[i]
        for _ in range(300):
            single.step()
        err_q = (local_qpos(b)[i] - single.qpos[0]).abs().max().item()
        err_v = (b.qvel[i] - single.qvel[0]).abs().max().item()
        assert err_q < 1e-6 and err_v < 1e-5, (
            f"env {i} of {N} differs from the single-env model by {err_q:.2e} (qpos), {err_v:.2e} (qvel): the "
            "copies interact (e.g. through each copy's infinite ground plane)")


# ------------------------------------------------------------------------------------------- non-finite states
@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_nonfinite_envs_are_flagged_and_reset_to_default_restores_them(backend, tmp_cwd):
    b = make_backend(arm_spec(), N, backend, env_spacing=SPACING)
    b.ctrl[:] = ARM_TARGETS
    for _ in range(50):
        b.step()
    assert not b.nonfinite_envs().any()
    b.qvel[2, 1] = float("nan")
    assert b.nonfinite_envs().tolist() == [False, False, True, False]
    b.qpos[0, 4] = float("inf")
    assert b.nonfinite_envs().tolist() == [True, False, True, False]

    keep_q, keep_v = b.qpos[[1, 3]].clone(), b.qvel[[1, 3]].clone()
    b.reset_to_default(torch.tensor([0, 2]))
    assert not b.nonfinite_envs().any()
    default = torch.as_tensor(b.model.qpos0, dtype=torch.float64)
    torch.testing.assert_close(local_qpos(b)[[0, 2]], default.expand(2, -1), atol=1e-6, rtol=0)
    assert torch.count_nonzero(b.qvel[[0, 2]]) == 0 and torch.count_nonzero(b.ctrl[[0, 2]]) == 0
    assert torch.equal(b.qpos[[1, 3]], keep_q) and torch.equal(b.qvel[[1, 3]], keep_v)


@pytest.mark.parametrize("backend", ["mujoco", "mujoco_batch", "mujoco_warp"])
def test_a_nonfinite_env_does_not_contaminate_the_others(backend, tmp_cwd):
    """The env layer resets only the envs that became non-finite, so a NaN must stay in its own env."""
    b = make_backend(arm_spec(), N, backend, "cpu", env_spacing=SPACING)
    b.ctrl[:] = ARM_TARGETS.to(b.ctrl.dtype)
    for _ in range(50):  # forearms of envs 0 and 1 on their boxes: contacts are active
        b.step()
    b.qvel[1] = float("nan")
    b.step()
    flagged = b.nonfinite_envs().tolist()
    assert flagged[1]
    assert flagged == [False, True, False, False], (
        f"a NaN in env 1 made envs {[i for i, f in enumerate(flagged) if f]} non-finite after one {backend} step")


def test_a_batch_simulation_in_which_mujoco_raises_is_reported_and_the_others_step_on(tmp_cwd):
    """Arena overflow (an error in MuJoCo, not a NaN) in some simulations: they keep their last state, are reported
    by nonfinite_envs (so the env layer resets them) and the call does not raise."""
    spec = mujoco.MjSpec.from_file(str(ASSETS_DIR / "pile.xml"))  # ~40 contacts once the pile settles
    spec.memory = 30_000  # bytes: too little for the contacts of a settled pile
    b = make_backend(spec, 2, "mujoco_batch")
    qpos = b.qpos[1:].clone()
    qpos[:, 2::7] += 1.0  # env 1's pile starts 1 m higher: no contact within the test's 0.16 s
    b.write_state(torch.tensor([1]), qpos, torch.zeros_like(b.qvel[1:]))
    flagged = torch.zeros(2, dtype=torch.bool)
    for _ in range(40):
        b.step()
        flagged |= b.nonfinite_envs()
    assert flagged.tolist() == [True, False]
    assert "out of memory" in b.batch.error(0)
    assert torch.isfinite(b.qpos).all()  # the failed env's state is kept, not corrupted
    assert b.qvel[1, 2].item() == pytest.approx(-9.81 * 40 * 0.004, rel=1e-6)  # env 1 fell freely for 40 steps


# ------------------------------------------------------------------------------------------------------- sites
@pytest.mark.parametrize("backend", ["mujoco", "mujoco_batch", "mujoco_warp"])
def test_site_poses_are_body_poses_plus_rotated_offsets(backend):
    b = make_backend(arm_spec(), N, backend, "cpu", env_spacing=SPACING)
    b.ctrl[:] = ARM_TARGETS.to(b.ctrl.dtype)
    b.qvel[:, 3:6] = torch.tensor([0.0, 0.0, 1.5], dtype=b.qvel.dtype)  # toss the boxes up so they rotate
    b.qvel[:, 6:9] = torch.tensor([2.0, -3.0, 1.0], dtype=b.qvel.dtype)
    for _ in range(60):
        b.step()
    m = b.model
    tol = 1e-9 if backend == "mujoco" else 1e-5
    for s, name in enumerate(b.site_names):
        k = int(m.site_bodyid[s]) - 1
        offset = np.asarray(m.site_pos[s], dtype=np.float64)
        site_rot = rotmat(m.site_quat[s])
        for i in range(N):
            body_rot = rotmat(b.body_quat_w[i, k].double().numpy())
            expected_pos = b.body_pos_w[i, k].double().numpy() + body_rot @ offset
            np.testing.assert_allclose(b.site_pos_w[i, s].double().numpy(), expected_pos, atol=tol, rtol=0,
                                       err_msg=f"site {name}, env {i}")
            np.testing.assert_allclose(b.site_xmat_w[i, s].double().numpy(), (body_rot @ site_rot).ravel(),
                                       atol=tol, rtol=0, err_msg=f"site {name}, env {i}")
    # The boxes really turned: the test is not comparing identities.
    box_rot = rotmat(b.body_quat_w[0, body_index(b, "box")].double().numpy())
    assert np.abs(box_rot - np.eye(3)).max() > 0.1


# ------------------------------------------------------------------------------------------ backend agreement
def test_c_and_warp_agree_on_a_free_body_under_a_constant_wrench():
    """Crazyflie, 50 steps of 10 ms with a constant body wrench and an initial spin (gyroscopic coupling)."""
    wrench = torch.tensor([0.05, -0.02, 0.30, 2e-6, -1e-6, 5e-7], dtype=torch.float64)
    wrench = wrench * torch.tensor([1.0, 0.5, -1.0, 2.0], dtype=torch.float64).unsqueeze(1)  # (N, 6), per env
    spin = torch.tensor([3.0, -2.0, 1.0], dtype=torch.float64) * torch.linspace(0.5, 2.0, N).double().unsqueeze(1)
    results = {}
    for name in ("mujoco", "mujoco_warp"):
        b = make_backend(crazyflie_spec(), N, name, "cpu", env_spacing=0.0)
        qpos = b.qpos.double().clone()
        qpos[:, 2] += 1.0
        qvel = torch.zeros(N, 6, dtype=torch.float64)
        qvel[:, 3:] = spin
        b.write_state(torch.arange(N), qpos, qvel)
        for _ in range(50):
            b.qfrc_applied[:] = wrench.to(b.qfrc_applied.dtype)
            b.step()
        results[name] = (local_qpos(b), b.qvel.double().clone())
    (qc, vc), (qw, vw) = results["mujoco"], results["mujoco_warp"]
    # Not a trivial comparison: the bodies moved and their spin changed.
    assert (qc[:, :3] - torch.tensor([0.0, 0.0, 1.0]).double()).norm(dim=1).min() > 0.05
    assert (vc[:, 3:] - spin).abs().max() > 0.1
    # Same equations; MuJoCo Warp integrates in float32 (eps 1.2e-7) and MuJoCo C in float64, so rounding errors of
    # ~1e-7 per step accumulate over 50 steps. Measured differences: ~1e-6 (qpos), ~1e-5 (qvel); tolerance 1e-4.
    torch.testing.assert_close(qw, qc, atol=1e-4, rtol=0)
    torch.testing.assert_close(vw, vc, atol=1e-4, rtol=0)


def test_the_three_backends_agree_on_the_arm_with_contacts():
    """Arm with per-env position targets, 50 steps of 2 ms: the forearms of envs 0 and 1 land on their boxes.

    State, body poses, the end-effector Jacobian and the box-floor penetration of MuJoCo Warp (CPU device) and the
    MuJoCo batch backend are compared with MuJoCo C (one model of N copies)."""
    results = {}
    for name in ("mujoco", "mujoco_batch", "mujoco_warp"):
        b = make_backend(arm_spec(), N, name, "cpu", env_spacing=SPACING)
        b.ctrl[:] = ARM_TARGETS.to(b.ctrl.dtype)
        b.step(20)
        for _ in range(30):
            b.step()
        box, floor = b.geom_ids(["box"]), b.geom_ids(["floor"])
        results[name] = {"qpos": local_qpos(b), "qvel": b.qvel.double().clone(),
                         "body_pos": (b.body_pos_w - b.env_origins.unsqueeze(1)).double(),
                         "jac": b.site_jacobian(b.site_index("ee")).double(),
                         "penetration": b.max_penetration(box, floor).double(), "contacts": b.num_contacts()}
    c = results["mujoco"]
    assert (c["qpos"][:, :3].abs().amax(dim=1)[:3] > 0.1).all()  # the arms moved
    assert (c["penetration"] > 1e-5).all()  # the boxes rest on the floor
    # Batch: the same engine and float64 on separate MjData; measured differences ~1e-15 (qpos), ~1e-14 (qvel).
    # Warp: float32 (eps 1.2e-7) and its own solver iterations; measured ~1e-7 (qpos, Jacobian), ~1e-6 (qvel), 3e-9 m
    # (penetration). The tolerances leave room for contact impacts, which amplify rounding differences.
    tolerances = {"mujoco_batch": dict(qpos=1e-9, qvel=1e-9, body_pos=1e-9, jac=1e-9, penetration=1e-9),
                  "mujoco_warp": dict(qpos=2e-3, qvel=5e-2, body_pos=2e-3, jac=1e-4, penetration=1e-5)}
    for name in tolerances:
        assert torch.equal(results[name]["contacts"], c["contacts"]), name
    for name, tol in tolerances.items():
        for key, atol in tol.items():
            torch.testing.assert_close(results[name][key], c[key], atol=atol, rtol=0,
                                       msg=lambda m, name=name, key=key: f"{name} {key}: {m}")


# ------------------------------------------------------------------------------------------------------ errors
def test_make_backend_rejects_an_unknown_backend_name():
    with pytest.raises(ValueError, match=r"Unknown physics backend 'physx'.*mujoco_warp"):
        make_backend(arm_spec(), 2, "physx")


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_make_backend_rejects_mujoco_c_on_cuda(monkeypatch, backend):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # pretend a GPU exists: the C check must fire
    with pytest.raises(ValueError, match="CPU only"):
        make_backend(arm_spec(), 2, backend, "cuda")


@pytest.mark.parametrize("backend", ["auto", "mujoco_warp", "mujoco"])
def test_make_backend_reports_cuda_without_a_gpu_as_an_error(monkeypatch, backend):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="no CUDA GPU"):
        make_backend(arm_spec(), 2, backend, "cuda:0")


def test_make_backend_rejects_zero_envs():
    with pytest.raises(ValueError, match="num_envs"):
        make_backend(arm_spec(), 0, "mujoco")
