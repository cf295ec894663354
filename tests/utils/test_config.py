"""Tests for foundation.utils.config: overrides, to_dict and save_yaml."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Literal

import pytest
import yaml

from foundation.utils.config import (ConfigError, FieldChecks, apply_overrides, diff, merge_dict, save_yaml, to_dict,
                                     validate)


@dataclass
class SceneCfg:
    num_envs: int = 16
    env_spacing: float = 2.0
    replicate: bool = True


@dataclass
class RobotCfg:
    asset_path: str = "robot.xml"
    mass: float | None = 0.03


@dataclass
class GoalCfg:
    z_range: tuple[float, float] = (0.5, 1.0)
    mode: Literal["fixed", "random"] = "random"

    def __post_init__(self):
        if self.z_range[0] > self.z_range[1]:
            raise ValueError(f"z_range must be increasing, got {self.z_range}")


@dataclass
class EnvCfg:
    scene: SceneCfg = field(default_factory=SceneCfg)
    robot: RobotCfg = field(default_factory=RobotCfg)
    goal: GoalCfg = field(default_factory=GoalCfg)
    obs_groups: dict[str, list[str]] = field(default_factory=lambda: {"policy": ["pos", "vel"]})


@dataclass
class ActorCfg:
    hidden_dims: list[int] = field(default_factory=lambda: [256, 256])


@dataclass
class AgentCfg:
    actor: ActorCfg = field(default_factory=ActorCfg)
    learning_rate: float = 1e-3
    run_name: str | None = "run"
    seed: int | None = None


def cfgs():
    return {"env": EnvCfg(), "agent": AgentCfg()}


def error_of(overrides) -> str:
    with pytest.raises(ConfigError) as info:
        apply_overrides(cfgs(), overrides)
    return str(info.value)


def test_nested_override_applies_and_input_untouched():
    original = cfgs()
    out = apply_overrides(original, ["env.scene.num_envs=256", "env.robot.asset_path=/x/y.xml",
                                     "agent.actor.hidden_dims=[128,128]"])
    assert out["env"].scene.num_envs == 256
    assert out["env"].robot.asset_path == "/x/y.xml"
    assert out["agent"].actor.hidden_dims == [128, 128]
    assert out["env"].scene.env_spacing == 2.0  # untouched siblings keep their values
    assert original["env"].scene.num_envs == 16
    assert original["agent"].actor.hidden_dims == [256, 256]
    # results share no mutable state with the inputs
    out["env"].obs_groups["policy"].append("x")
    assert original["env"].obs_groups == {"policy": ["pos", "vel"]}


def test_int_is_accepted_for_float_and_converted():
    out = apply_overrides(cfgs(), ["agent.learning_rate=1", "env.scene.env_spacing=3e-1"])
    assert out["agent"].learning_rate == 1.0 and type(out["agent"].learning_rate) is float
    assert out["env"].scene.env_spacing == pytest.approx(0.3)


def test_list_becomes_tuple_with_length_and_element_checks():
    out = apply_overrides(cfgs(), ["env.goal.z_range=[1,1.5]"])
    assert out["env"].goal.z_range == (1.0, 1.5)
    assert type(out["env"].goal.z_range) is tuple
    assert "env.goal.z_range" in error_of(["env.goal.z_range=[1,2,3]"])
    assert "env.goal.z_range" in error_of(["env.goal.z_range=[a,b]"])


def test_null_only_for_optional_fields():
    out = apply_overrides(cfgs(), ["agent.run_name=null", "env.robot.mass=null", "agent.seed=3"])
    assert out["agent"].run_name is None and out["env"].robot.mass is None
    assert out["agent"].seed == 3
    msg = error_of(["env.scene.num_envs=null"])
    assert "env.scene.num_envs" in msg and "int" in msg


def test_literal_accepted_and_rejected():
    assert apply_overrides(cfgs(), ["env.goal.mode=fixed"])["env"].goal.mode == "fixed"
    msg = error_of(["env.goal.mode=sometimes"])
    assert "env.goal.mode" in msg and "'fixed'" in msg and "'random'" in msg and "sometimes" in msg


def test_dict_field_override():
    out = apply_overrides(cfgs(), ["env.obs_groups={policy:[pos],critic:[pos,vel]}"])
    assert out["env"].obs_groups == {"policy": ["pos"], "critic": ["pos", "vel"]}


def test_unquoted_number_for_str_field_keeps_its_text():
    out = apply_overrides(cfgs(), ["agent.run_name=2024", "env.robot.asset_path='1e3'"])
    assert out["agent"].run_name == "2024"
    assert out["env"].robot.asset_path == "1e3"


def test_unknown_key_suggests_closest_dotted_key():
    msg = error_of(["env.scene.num_env=3"])
    assert "env.scene.num_env" in msg and "did you mean" in msg and "env.scene.num_envs" in msg
    assert "agent.learning_rate" in error_of(["agent.lerning_rate=1"])


def test_unknown_key_without_close_match_lists_level_keys():
    msg = error_of(["env.scene.zzzzzzzzzzzz=1"])
    assert "num_envs" in msg and "env_spacing" in msg and "replicate" in msg


def test_unknown_root_lists_roots():
    msg = error_of(["trainer.max_iterations=10"])
    assert "trainer" in msg and "agent" in msg and "env" in msg


@pytest.mark.parametrize(
    "override, expected, given",
    [
        ("env.scene.num_envs=abc", "expected int", "'abc'"),
        ("env.scene.num_envs=1.5", "expected int", "1.5"),
        ("env.scene.num_envs=[1,2]", "expected int", "[1, 2]"),
        ("env.scene.replicate=yes", "expected bool", "'yes'"),
        ("agent.actor.hidden_dims=[1,x]", "expected list[int]", "[1, 'x']"),
    ],
)
def test_wrong_type_names_key_expected_type_and_value(override, expected, given):
    msg = error_of([override])
    assert f"'{override.split('=')[0]}'" in msg and expected in msg and f"got {given}" in msg


def test_overriding_nested_config_with_scalar_is_error():
    msg = error_of(["env.scene=3"])
    assert "env.scene" in msg and "nested config" in msg


def test_all_bad_overrides_reported_together_and_nothing_applied():
    original = cfgs()
    with pytest.raises(ConfigError) as info:
        apply_overrides(original, ["env.scene.num_envs=8", "env.scene.num_env=3",
                                   "agent.learning_rate=fast", "env.goal.mode=x"])
    msg = str(info.value)
    assert "num_env'" in msg and "agent.learning_rate" in msg and "env.goal.mode" in msg
    assert "env.scene.num_envs=8" not in msg
    assert original["env"].scene.num_envs == 16


@pytest.mark.parametrize("override", ["+env.scene.foo=1", "++env.scene.num_envs=1",
                                      "~env.scene.num_envs", "env.scene.num_envs=1,2",
                                      "env.scene.num_envs=range(1,3)"])
def test_non_plain_overrides_rejected(override):
    assert "only plain 'key=value'" in error_of([override])


def test_unparseable_override_rejected():
    assert "cannot parse 'env.scene.num_envs'" in error_of(["env.scene.num_envs"])


def test_post_init_runs_on_changed_nodes():
    with pytest.raises(ConfigError, match="z_range must be increasing"):
        apply_overrides(cfgs(), ["env.goal.z_range=[2,1]"])


def test_last_override_of_a_key_wins():
    out = apply_overrides(cfgs(), ["env.scene.num_envs=1", "env.scene.num_envs=2"])
    assert out["env"].scene.num_envs == 2


def test_to_dict_round_trip():
    env = apply_overrides(cfgs(), ["env.goal.z_range=[0.2,0.4]"])["env"]
    d = to_dict(env)
    assert d["goal"] == {"z_range": [0.2, 0.4], "mode": "random"}
    assert d["scene"] == {"num_envs": 16, "env_spacing": 2.0, "replicate": True}
    rebuilt = EnvCfg(scene=SceneCfg(**d["scene"]), robot=RobotCfg(**d["robot"]),
                     goal=GoalCfg(**{**d["goal"], "z_range": tuple(d["goal"]["z_range"])}),
                     obs_groups=d["obs_groups"])
    assert rebuilt == env
    with pytest.raises(TypeError):
        to_dict(42)


def test_save_yaml_writes_readable_yaml_atomically(tmp_path):
    path = tmp_path / "params" / "env.yaml"
    save_yaml(EnvCfg(), path)
    assert yaml.safe_load(path.read_text()) == to_dict(EnvCfg())
    save_yaml(AgentCfg(learning_rate=5e-4), str(path))  # overwrite an existing file
    assert yaml.safe_load(path.read_text())["learning_rate"] == 5e-4
    assert os.listdir(path.parent) == ["env.yaml"]


# ------------------------------------------------------------------------------- saved configs, diffs, validation
def test_merge_dict_applies_a_saved_config_with_type_checks():
    saved = {"scene": {"num_envs": 64}, "goal": {"z_range": [0.2, 0.4]}, "obs_groups": {"policy": ["pos"]}}
    merged = merge_dict(EnvCfg(), saved, "env")
    assert merged.scene.num_envs == 64 and merged.scene.env_spacing == 2.0  # missing keys keep their values
    assert merged.goal.z_range == (0.2, 0.4) and merged.obs_groups == {"policy": ["pos"]}
    with pytest.raises(ConfigError) as info:
        merge_dict(EnvCfg(), {"scene": {"num_envs": "many", "color": 1}}, "env")
    assert "env.scene.num_envs: expected int" in str(info.value) and "env.scene.color: unknown key" in str(info.value)


def test_diff_lists_every_changed_leaf():
    new = apply_overrides(cfgs(), ["env.scene.num_envs=32", "agent.actor.hidden_dims=[8]"])
    lines = diff(cfgs()["env"], new["env"], "env") + diff(cfgs()["agent"], new["agent"], "agent")
    assert lines == ["env.scene.num_envs: 16 -> 32", "agent.actor.hidden_dims: [256, 256] -> [8]"]


@dataclass
class CheckedCfg:
    rate: float = 0.1
    count: int = 2
    limit: int = 5
    inner: SceneCfg = field(default_factory=SceneCfg)

    def validate(self):
        c = FieldChecks(self, "checked config")
        c.positive("rate")
        c.in_range("count", 0, 3)
        c.require(self.count <= self.limit, "count", f"must be <= limit ({self.limit})")
        c.at_least("inner.num_envs", 1)
        c.raise_errors()


def test_validate_lists_every_problem_with_its_full_key_value_and_valid_range():
    validate({"cfg": CheckedCfg()})  # valid: no error
    with pytest.raises(ConfigError) as info:
        validate({"cfg": CheckedCfg(rate=float("nan"), count=9, limit=4, inner=SceneCfg(num_envs=0))})
    assert info.value.lines == ["cfg.rate=nan: must be a finite number", "cfg.count=9: must be in [0, 3]",
                                "cfg.count=9: must be <= limit (4)", "cfg.inner.num_envs=0: must be >= 1"]


@dataclass
class RangesCfg:
    span: tuple[float, float] = (0.0, 1.0)
    mass: tuple[float, float] = (0.02, 0.03)
    steps: tuple[int, int] = (0, 3)

    def validate(self):
        c = FieldChecks(self, "ranges config")
        c.range_pair("span")
        c.range_pair("mass", 0.0, closed=False)
        c.range_pair("steps", 0, integer=True)
        c.raise_errors()


def test_range_pairs_need_ordered_finite_ends_within_their_bound():
    validate({"cfg": RangesCfg()})
    validate({"cfg": RangesCfg(span=(-5.0, -5.0), mass=(0.01, 0.01), steps=(0, 0))})  # equal ends are valid
    with pytest.raises(ConfigError) as info:
        validate({"cfg": RangesCfg(span=(1.0, 0.0), mass=(0.0, 0.03), steps=(-1, 2))})
    assert info.value.lines == ["cfg.span=(1.0, 0.0): must be (low, high) with low <= high",
                                "cfg.mass=(0.0, 0.03): must be (low, high) with 0.0 < low <= high",
                                "cfg.steps=(-1, 2): must be (low, high) with 0 <= low <= high"]
    with pytest.raises(ConfigError) as info:
        validate({"cfg": RangesCfg(span=(0.0, float("inf")), steps=(0.5, 2))})
    assert info.value.lines == ["cfg.span=(0.0, inf): must be a (low, high) pair of finite numbers",
                                "cfg.steps=(0.5, 2): must be a (low, high) pair of integers"]
