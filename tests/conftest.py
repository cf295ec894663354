"""Shared test setup: Warp kernel cache, single-threaded torch, small point-control envs, a tiny PPO teacher.

Everything here is kept light: the whole suite runs on a 2-core CPU in a few minutes, next to a training run.
"""

from __future__ import annotations

import os

# MuJoCo Warp compiles its kernels on first use (30-90 s on the CPU); the cache must be set before warp is imported.
os.environ.setdefault("WARP_CACHE_PATH", os.path.expanduser("~/.cache/foundation/warp"))
# Runs go to logs/rsl_rl under the working directory of each test (train.py anchors its default at the project).
os.environ["FOUNDATION_LOG_ROOT"] = os.path.join("logs", "rsl_rl")

import contextlib
import pathlib

import pytest
import torch

torch.set_num_threads(1)

TESTS_DIR = pathlib.Path(__file__).parent
ASSETS_DIR = TESTS_DIR / "assets"
ARM_XML = ASSETS_DIR / "arm.xml"


@contextlib.contextmanager
def working_directory(path: os.PathLike):
    """Run a block with ``path`` as the current directory (train.py writes ``logs/`` relative to it)."""
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def set_cfg(cfg, **values) -> None:
    """Set nested config fields given as ``a__b=value`` (for ``cfg.a.b = value``)."""
    for key, value in values.items():
        *path, leaf = key.split("__")
        node = cfg
        for name in path:
            node = getattr(node, name)
        if not hasattr(node, leaf):
            raise AttributeError(f"config has no field {key.replace('__', '.')}")
        setattr(node, leaf, value)


def point_ctrl_cfg(num_envs: int = 16, seed: int = 0, task: str = "point_ctrl", **values):
    """The task's ``(env_cfg, agent_cfg)`` with ``num_envs``, ``seed`` and nested fields ``a__b=value`` set."""
    from foundation.tasks import load_task_cfgs

    env_cfg, agent_cfg = load_task_cfgs(task)
    env_cfg.scene.num_envs = num_envs
    env_cfg.seed = seed
    set_cfg(env_cfg, **values)
    return env_cfg, agent_cfg


def make_point_ctrl_env(num_envs: int = 16, seed: int = 0, **values):
    """A ``point_ctrl`` environment (unwrapped) built through the task registry."""
    from foundation.tasks import make_env

    env_cfg, _ = point_ctrl_cfg(num_envs, seed, **values)
    return make_env("point_ctrl", env_cfg)


#: Overrides that keep train.py runs tiny: short episodes (fast evaluations), few steps per iteration.
TINY_RUN = ["env.episode_length_s=1.0", "agent.num_steps_per_env=8", "agent.eval.interval=0",
            "agent.eval.num_episodes=16", "agent.eval.final_num_episodes=16"]


@pytest.fixture
def log_dir(tmp_path, monkeypatch):
    """A fresh, empty working directory for train.py (its ``logs/`` goes there)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def tmp_cwd(tmp_path, monkeypatch):
    """An empty working directory, for tests that make MuJoCo warn (it writes MUJOCO_LOG.TXT into the cwd)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="session")
def teacher_checkpoint(tmp_path_factory) -> pathlib.Path:
    """A PPO teacher checkpoint of ``point_ctrl``: one training iteration of train.py at 16 envs.

    Its actor is untrained; the tests only need a real checkpoint with the layout train.py writes.
    """
    from foundation.rsl_rl.train import main

    workdir = tmp_path_factory.mktemp("teacher")
    with working_directory(workdir):
        out = main(["--task", "point_ctrl", "--num_envs", "16", "--max_iterations", "1", *TINY_RUN])
    path = pathlib.Path(out["checkpoint"])
    assert path.is_file()
    return path
