"""Physics of the gear-assembly scene on raw MuJoCo: a held gear stays put, the scripted insertion seats it from
random starts, the same controller aimed 3 mm off the axis does not (contact is real), and nothing sinks in.

Sizes are for CI (a few seconds each); scripts/scripted_insertion.py runs the same checks on 200 starts
(docs/gear_physics.md). Physics is deterministic for a seed, so the counts below are exact, not sampled.
"""

from __future__ import annotations

import math

import mujoco
import numpy as np
import pytest
import torch

from foundation.tasks.gear_assembly.harness import GearScene, run_scripted_episode
from foundation.tasks.gear_assembly.scripted import ScriptedInsertion
from foundation.tasks.gear_assembly.success import GearSuccessCfg, gear_seated
from foundation.utils.math import matrix_from_quat

#: Episodes per aim in CI: at least 11 of 12 seated (the issue asks >= 95 %, checked on 200 starts by the script),
#: at most 1 of 12 from 3 mm off (<= 5 %).
EPISODES = 12
MAX_PENETRATION_M = 0.0005
HOLD_SLIP_TOLERANCE_M = 0.0005


@pytest.fixture(scope="module")
def scene() -> GearScene:
    return GearScene()


def test_scene_has_the_named_sites_and_no_weld(scene):
    m = scene.model
    for name in ("tcp", "ft_site", "shaft_tip", "gear_seated", "gear_center"):
        assert m.site(name).id >= 0
    # Only Menagerie's finger-coupling joint equality: the gear is not welded to anything.
    assert m.neq == 1 and m.eq_type[0] == mujoco.mjtEq.mjEQ_JOINT
    assert math.isclose(float(m.body("gear").mass[0]), 0.019)
    assert {m.sensor(i).name for i in range(m.nsensor)} == {"wrist_force", "wrist_torque"}


def test_hole_fits_the_shaft_with_at_most_1mm_diametral_clearance_and_a_rounded_lead_in(scene):
    m = scene.model
    shaft_r = float(m.geom("shaft").size[0])
    spheres = [g for g in range(m.ngeom) if m.geom(g).name.startswith("gear_hole")]
    centres, radii = m.geom_pos[spheres][:, :2], m.geom_size[spheres][:, 0]
    play = []  # how far the shaft axis moves from the hole's axis, per direction, before touching a sphere
    for angle in np.linspace(0, 2 * np.pi, 720, endpoint=False):
        u = np.array([np.cos(angle), np.sin(angle)])
        # |t u - c| = r_s + r  ->  t = u.c - sqrt((u.c)^2 - |c|^2 + (r_s + r)^2), smallest over the spheres ahead
        uc = centres @ u
        disc = uc**2 - (centres**2).sum(1) + (radii + shaft_r) ** 2
        ahead = (disc >= 0) & (uc > 0)
        play.append(float((uc[ahead] - np.sqrt(disc[ahead])).min()))
    play = np.array(play)
    assert play.min() > 0  # the shaft fits
    diametral = (play + np.roll(play, len(play) // 2)).max()  # free play in one direction plus the opposite one
    assert diametral <= 0.001, f"diametral clearance {diametral * 1e3:.2f} mm"
    edge = float(m.geom("shaft_edge0").size[0])
    assert 0.0005 <= edge <= 0.001


def test_hold_at_rest_5s_no_nan_and_no_slip(scene):
    scene.reset(np.random.default_rng(0))
    start = scene.gear_in_tcp()
    slip = 0.0
    for _ in range(int(round(5.0 / scene.model.opt.timestep))):
        scene.step()
        slip = max(slip, float(np.linalg.norm(scene.gear_in_tcp() - start)))
    assert np.isfinite(scene.data.qpos).all()
    assert slip < HOLD_SLIP_TOLERANCE_M, f"gear slipped {slip * 1e3:.3f} mm in the fingers"
    assert not scene.seated()
    # The wrist force sensor carries the hand, the fingers and the gear (gravity compensation acts on the joints,
    # not inside the wrist): |F| = (m_hand + m_fingers + m_gear) g.
    m = scene.model
    carried = sum(float(m.body(b).mass[0]) for b in ("hand", "left_finger", "right_finger", "gear"))
    force = np.linalg.norm(scene.data.sensor("wrist_force").data)
    assert force == pytest.approx(carried * -m.opt.gravity[2], rel=0.01)


def test_scripted_insertion_seats_from_random_starts(scene):
    rng = np.random.default_rng(1)
    results = [run_scripted_episode(scene, rng, 0.0) for _ in range(EPISODES)]
    seated = sum(r.seated for r in results)
    assert seated >= EPISODES - 1, f"seated {seated}/{EPISODES}"
    assert not any(r.nonfinite for r in results)
    deepest = max(r.max_penetration_m for r in results)
    assert deepest < MAX_PENETRATION_M, f"gear-shaft penetration {deepest * 1e3:.2f} mm"


def test_scripted_insertion_aimed_3mm_off_axis_does_not_seat(scene):
    rng = np.random.default_rng(2)
    results = [run_scripted_episode(scene, rng, 0.003) for _ in range(EPISODES)]
    seated = sum(r.seated for r in results)
    assert seated <= 1, f"seated {seated}/{EPISODES} from 3 mm off the axis: the contact is too soft"
    deepest = max(r.max_penetration_m for r in results)
    assert deepest < MAX_PENETRATION_M, f"gear-shaft penetration {deepest * 1e3:.2f} mm"


# ------------------------------------------------------------------------------------------- success predicate
def _quat_axis_angle(axis, angle):
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    return np.concatenate([[math.cos(angle / 2)], math.sin(angle / 2) * axis])


def _seated(gear_offset, gear_quat=(1, 0, 0, 0), shaft_quat=(1, 0, 0, 0)):
    seated_pos = torch.tensor([[0.5, 0.1, 0.03]], dtype=torch.float64)
    r = torch.tensor(np.asarray(shaft_quat, float))[None]
    offset_world = (matrix_from_quat(r)[0] @ torch.tensor(gear_offset, dtype=torch.float64))[None]
    return bool(gear_seated(seated_pos + offset_world, torch.tensor(np.asarray([gear_quat], float)),
                            seated_pos, r)[0])


def test_success_predicate_on_hand_placed_configurations():
    assert _seated([0.0, 0.0, 0.0])
    assert _seated([0.002, 0.0, 0.0015])  # within 2.5 mm of the axis, 2 mm of the height
    assert not _seated([0.003, 0.0, 0.0])  # off the axis
    assert not _seated([0.0, 0.0, 0.0025])  # not pushed down
    assert not _seated([0.0, 0.0, 0.03])  # held above the shaft
    tilted = _quat_axis_angle([1, 0, 0], math.radians(40))  # face centres 3.2 mm off the axis
    assert not _seated([0.0, 0.0, 0.0], gear_quat=tilted)
    assert _seated([0.0, 0.0, 0.0], gear_quat=_quat_axis_angle([0, 0, 1], 1.0))  # yaw does not matter
    # In a rotated shaft frame: the offset is measured along the shaft's own axis.
    shaft = _quat_axis_angle([0, 1, 0], math.radians(90))
    assert _seated([0.0, 0.0, 0.001], gear_quat=shaft, shaft_quat=shaft)
    assert not _seated([0.003, 0.0, 0.0], gear_quat=shaft, shaft_quat=shaft)


def test_success_predicate_rejects_bad_shapes():
    with pytest.raises(ValueError, match="gear_quat"):
        gear_seated(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 4), GearSuccessCfg())


def test_scripted_controller_phases_and_step_limits():
    ctrl = ScriptedInsertion(2)
    tip = torch.tensor([[0.5, 0.0, 0.045], [0.4, 0.1, 0.045]])
    seated = tip - torch.tensor([0.0, 0.0, 0.015])
    tcp = torch.tensor([[0.5, 0.05, 0.1], tip[1].tolist()])
    tcp[1, 2] += ctrl.cfg.hover_clearance_m + ctrl.cfg.gear_half_thickness_m  # env 1 already at its hover point
    target = ctrl.compute(tcp, tip, seated)
    assert ctrl.phase.tolist() == [0, 1]
    assert torch.allclose((target[0] - tcp[0]).norm(), torch.tensor(ctrl.cfg.max_step_m))
    assert (target[1] - tcp[1]).norm() <= ctrl.cfg.max_push_m + 1e-9 and target[1, 2] < tcp[1, 2]
    with pytest.raises(ValueError, match="tcp_pos"):
        ctrl.compute(tcp[:1], tip, seated)
