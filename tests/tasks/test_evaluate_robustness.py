"""``scripts/evaluate_robustness.py``: its conditions are the nominal Crazyflie plus one factor each, and it writes the
table of a real checkpoint as JSON."""

from __future__ import annotations

import importlib.util
import json

import pytest

from tests.conftest import TESTS_DIR

_spec = importlib.util.spec_from_file_location("evaluate_robustness",
                                               TESTS_DIR.parent / "scripts" / "evaluate_robustness.py")
robustness = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(robustness)


def test_nominal_disables_every_randomised_factor():
    cfg = robustness.condition_cfg("nominal", 4, 0, "cpu")
    rc, gusts = cfg.robot, cfg.gusts
    for low, high in (rc.mass_range_kg, rc.thrust_to_weight_range, rc.payload_range_kg, rc.motor_strength_range,
                      rc.motor_tau_scale_range, rc.latency_steps_range):
        assert low == high
    assert rc.mass_range_kg[0] == rc.mass_kg and rc.thrust_to_weight_range[0] == 2.25
    assert rc.payload_range_kg[0] == 0.0 and rc.latency_steps_range[0] == 0 and gusts.rate_hz == 0.0


def test_each_edge_condition_changes_only_its_own_factor():
    nominal = robustness.condition_cfg("nominal", 4, 0, "cpu")
    expected = {"latency_20ms": ("robot", "latency_steps_range", (2, 2)),
                "rotor_tau_0.06s": ("robot", "motor_tau_scale_range", (2.0, 2.0)),
                "payload_+10g": ("robot", "payload_range_kg", (0.01, 0.01))}
    for name, (group, key, value) in expected.items():
        cfg = robustness.condition_cfg(name, 4, 0, "cpu")
        assert getattr(getattr(cfg, group), key) == value
        setattr(getattr(cfg, group), key, getattr(getattr(nominal, group), key))
        assert cfg == nominal, name
    gusts = robustness.condition_cfg("gusts_0.3mg_0.3s", 4, 0, "cpu").gusts
    assert gusts.force_range_mg == (0.3, 0.3) and gusts.duration_range_s == (0.3, 0.3) and gusts.quiet_end_s >= 1.0


def test_the_script_evaluates_a_checkpoint_and_writes_the_table(teacher_checkpoint, tmp_cwd):
    out = tmp_cwd / "robustness.json"
    doc = robustness.main(["--teacher", str(teacher_checkpoint), "--roles", "teacher", "--num_episodes", "3",
                           "--conditions", "nominal", "payload_+10g", "--out", str(out)])
    assert json.loads(out.read_text()) == doc
    assert list(doc["conditions"]) == ["nominal", "payload_+10g"]
    for row in doc["conditions"].values():
        result = row["teacher"]
        assert result["num_episodes"] == 3 and 0.0 <= result["success_rate"] <= 1.0
        assert 0.0 <= result["action_rate"] <= 2.0 and 0.0 <= result["at_limit_fraction"] <= 1.0
    assert "| payload_+10g | edge |" in doc["table"]


def test_an_unknown_condition_is_rejected_naming_the_valid_ones(capsys):
    with pytest.raises(SystemExit):
        robustness.parse_args(["--conditions", "windy"])
    err = capsys.readouterr().err
    assert "windy" in err and "latency_20ms" in err
