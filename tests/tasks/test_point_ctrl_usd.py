"""``env.robot.spawn.usd_path``: point control flies the Crazyflie loaded from ``USD/crazyflie/cf2x.usda`` exactly as
the one loaded from its MJCF, and a bad path is a config error before anything is built.

Tolerance of the trajectory comparison: the USD stores mass, inertia and gravity as 32-bit floats (relative error
~1e-7), so after 20 policy steps (40 physics steps) from the same seeded start the teacher observations of the two
envs agree to 1e-5.
"""

from __future__ import annotations

import pathlib

import pytest
import torch

pytest.importorskip("pxr", reason="usd-core (pip install -e .) provides pxr")

from foundation.tasks import load_task_cfgs, make_env  # noqa: E402
from foundation.utils.config import ConfigError, apply_overrides  # noqa: E402

CF2X_USD = pathlib.Path(__file__).resolve().parents[2] / "USD" / "crazyflie" / "cf2x.usda"


def _env(*overrides: str):
    env_cfg, agent_cfg = load_task_cfgs("point_ctrl")
    cfgs = apply_overrides({"env": env_cfg, "agent": agent_cfg}, ["env.scene.num_envs=4", "env.seed=3", *overrides])
    return make_env("point_ctrl", cfgs["env"])


def test_usd_spawned_crazyflie_flies_like_the_mjcf_one():
    from_usd = _env(f"env.robot.spawn.usd_path={CF2X_USD}")
    from_mjcf = _env()
    model_usd, model_mjcf = from_usd.sim.model, from_mjcf.sim.model
    assert from_usd.sim.body_names == from_mjcf.sim.body_names == ["cf2x"]
    assert from_usd.sim.site_names == from_mjcf.sim.site_names
    torch.testing.assert_close(torch.as_tensor(model_usd.site_pos), torch.as_tensor(model_mjcf.site_pos),
                               rtol=0, atol=1e-9)
    torch.testing.assert_close(torch.as_tensor(model_usd.body_inertia), torch.as_tensor(model_mjcf.body_inertia),
                               rtol=1e-6, atol=0)
    assert model_usd.ngeom == model_mjcf.ngeom and model_usd.ntex == model_mjcf.ntex == 1
    generator = torch.Generator().manual_seed(0)
    obs_usd, obs_mjcf = from_usd.reset()[0], from_mjcf.reset()[0]
    torch.testing.assert_close(obs_usd["teacher"], obs_mjcf["teacher"], rtol=0, atol=1e-6)
    start = from_usd.sim.qpos[:, :3].clone()
    for _ in range(20):
        actions = torch.rand(4, 4, generator=generator) * 2 - 1
        obs_usd, obs_mjcf = from_usd.step(actions)[0], from_mjcf.step(actions)[0]
    assert ((from_usd.sim.qpos[:, :3] - start).norm(dim=1) > 0.01).all()  # it flew: the comparison is not trivial
    torch.testing.assert_close(from_usd.sim.qpos, from_mjcf.sim.qpos, rtol=0, atol=1e-6)
    torch.testing.assert_close(obs_usd["teacher"], obs_mjcf["teacher"], rtol=0, atol=1e-5)


@pytest.mark.parametrize("path, message", [("nowhere/cf2x.usda", "does not exist"),
                                           ("foundation/assets/crazyflie/cf2x.xml", "asset_path")])
def test_bad_usd_path_is_a_config_error(path, message):
    env_cfg, agent_cfg = load_task_cfgs("point_ctrl")
    with pytest.raises(ConfigError, match=f"spawn.usd_path.*{message}"):
        apply_overrides({"env": env_cfg, "agent": agent_cfg}, [f"env.robot.spawn.usd_path={path}"])
