"""Bad input fails early and clearly (issue 7, items 2 and 5-8): every config is validated as a whole before anything
is built or written, checkpoints of the wrong kind, task or format get one accurate line, lookups skip incomplete
runs, and run folders stay under the log root."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from foundation.rsl_rl import cli, play
from foundation.rsl_rl.checkpoints import RUN_MARKER
from foundation.rsl_rl.train import main
from tests.conftest import TINY_RUN

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PPO = ["--task", "point_ctrl", "--num_envs", "16", *TINY_RUN]
DISTILL = ["--task", "distillation", "--num_envs", "16", *TINY_RUN]


def error_of(argv: list[str], entry=main) -> str:
    """The message of the ``UsageError`` that ``entry(argv)`` raises."""
    with pytest.raises(cli.UsageError) as err:
        entry(argv)
    return str(err.value.code)


# ------------------------------------------------------------------------------------ values out of range (item 6)
BAD_VALUES = [
    # (override, key named in the message, what is valid)
    ("env.scene.num_envs=0", "env.scene.num_envs=0", "must be in [1, "),
    ("env.scene.num_envs=10000000", "env.scene.num_envs=10000000", "must be in [1, 1048576]"),
    ("env.sim.dt=0", "env.sim.dt=0.0", "must be > 0"),
    ("env.sim.dt=-0.01", "env.sim.dt=-0.01", "must be > 0"),
    ("env.decimation=0", "env.decimation=0", "must be >= 1"),
    ("agent.algorithm.learning_rate=-1e-3", "agent.algorithm.learning_rate=-0.001", "must be > 0"),
    ("agent.algorithm.learning_rate=nan", "agent.algorithm.learning_rate=nan", "finite"),
    ("agent.algorithm.gamma=2", "agent.algorithm.gamma=2.0", "must be in [0.0, 1.0]"),
    ("agent.algorithm.num_mini_batches=0", "agent.algorithm.num_mini_batches=0", "must be >= 1"),
    ("agent.algorithm.num_mini_batches=3", "agent.algorithm.num_mini_batches=3", "must divide the rollout"),
    ("agent.actor.hidden_dims=[]", "agent.actor.hidden_dims=[]", "non-empty list"),
    ("agent.actor.activation=relux", "agent.actor.activation='relux'", "'elu'"),
    ("agent.save_interval=0", "agent.save_interval=0", "must be >= 1"),
    ("agent.num_steps_per_env=0", "agent.num_steps_per_env=0", "must be >= 1"),
    ("agent.torch_threads=0", "agent.torch_threads=0", "must be >= 1"),
    ("agent.max_iterations=0", "agent.max_iterations=0", "must be >= 1"),
    ("agent.obs_groups={actor:[teacher]}", "agent.obs_groups=", "critic"),
    ("agent.experiment_name=../../x", "agent.experiment_name='../../x'", "single folder name"),
    ("agent.eval.num_episodes=0", "agent.eval.num_episodes=0", "must be >= 1"),
]


@pytest.mark.parametrize("override, key, valid", BAD_VALUES, ids=[b[0] for b in BAD_VALUES])
def test_an_out_of_range_value_fails_before_any_work_naming_key_value_and_valid_range(log_dir, override, key, valid):
    message = error_of([*PPO, override])
    assert key in message and valid in message, message
    assert not (log_dir / "logs").exists()


DISTILL_BAD = [
    ("agent.algorithm.phase1_iterations=30", "agent.algorithm.phase1_iterations=30", "<= max_iterations (20)"),
    ("agent.algorithm.max_buffer_size=8", "agent.algorithm.max_buffer_size=8", ">= num_envs (16)"),
    ("agent.algorithm.beta_decay_rate=1.5", "agent.algorithm.beta_decay_rate=1.5", "(0.0, 1.0)"),
]


@pytest.mark.parametrize("override, key, valid", DISTILL_BAD, ids=[b[0] for b in DISTILL_BAD])
def test_distillation_cross_field_rules(log_dir, override, key, valid):
    message = error_of([*DISTILL, "--max_iterations", "20", override])
    assert key in message and valid in message, message
    assert not (log_dir / "logs").exists()


def test_every_problem_is_listed_at_once(log_dir):
    message = error_of([*PPO, "env.decimation=0", "agent.algorithm.gamma=2", "agent.save_interval=0"])
    assert all(k in message for k in ("env.decimation", "agent.algorithm.gamma", "agent.save_interval"))


def test_an_unknown_observation_group_fails_before_the_run_folder_exists(log_dir):
    message = error_of([*PPO, "agent.obs_groups={actor:[teacher],critic:[privileged]}"])
    assert "agent.obs_groups.critic" in message and "privileged" in message and "teacher" in message
    assert not (log_dir / "logs").exists()


def test_a_run_name_with_a_path_separator_is_refused(log_dir):
    message = error_of([*PPO, "--run_name", "a/b"])
    assert "agent.run_name='a/b'" in message and "single folder name" in message


def test_a_usage_error_exits_with_status_2_and_one_line_without_traceback(tmp_path):
    env = {**os.environ, "FOUNDATION_LOG_ROOT": str(tmp_path / "logs")}
    proc = subprocess.run([sys.executable, os.path.join(REPO, "foundation", "rsl_rl", "train.py"), *PPO,
                           "agent.algorithm.gamma=2"], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "agent.algorithm.gamma=2.0" in proc.stderr
    assert not (tmp_path / "logs").exists()


# ------------------------------------------------------------------------------- checkpoints given by the user
@pytest.mark.parametrize("content, expected", [
    (b"hello, this is a text file\n", "is not a PyTorch checkpoint (torch.save writes a zip archive; this file is text)"),
    (bytes(range(256)) * 8, "is not a PyTorch checkpoint (torch.save writes a zip archive; this file is binary"),
    (b"", "is empty (0 bytes)"),
])
def test_a_file_that_is_not_a_checkpoint_gets_an_accurate_message(log_dir, content, expected):
    path = log_dir / "model.pt"
    path.write_bytes(content)
    message = error_of([*PPO, "--eval_only", "--checkpoint", str(path)])
    assert expected in message and "--allow_unsafe_checkpoint" not in message, message
    # Also with --allow_unsafe_checkpoint: the same line, never an unpickling traceback.
    assert expected in error_of([*PPO, "--eval_only", "--checkpoint", str(path), "--allow_unsafe_checkpoint"])


def test_a_truncated_checkpoint_is_called_damaged(log_dir, teacher_checkpoint):
    path = log_dir / "model.pt"
    data = teacher_checkpoint.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert "damaged or truncated" in error_of([*PPO, "--eval_only", "--checkpoint", str(path)])


def test_a_directory_given_as_checkpoint_is_called_a_directory(log_dir):
    message = error_of([*PPO, "--eval_only", "--checkpoint", str(log_dir)])
    assert "is a directory" in message and "does not exist" not in message


def test_the_teacher_checkpoint_is_refused_by_the_students_eval_only(log_dir, teacher_checkpoint):
    message = error_of([*DISTILL, "--eval_only", "--checkpoint", str(teacher_checkpoint)])
    assert "is a PPO (teacher) checkpoint" in message and "distillation (student)" in message


@pytest.fixture
def student_checkpoint(teacher_checkpoint, log_dir) -> str:
    out = main([*DISTILL, "--max_iterations", "1", "--checkpoint", str(teacher_checkpoint),
                "agent.algorithm.phase1_iterations=1", "agent.algorithm.max_buffer_size=1024"])
    return os.path.join(out["log_dir"], "model_0.pt")


def test_a_student_checkpoint_is_refused_as_policy_of_point_ctrl_and_as_teacher(log_dir, student_checkpoint):
    message = error_of([*PPO, "--eval_only", "--checkpoint", student_checkpoint])
    assert "is a distillation (student) checkpoint" in message and "PPO (teacher)" in message
    message = error_of([*DISTILL, "--max_iterations", "1", "agent.algorithm.phase1_iterations=1",
                        "--checkpoint", student_checkpoint])
    assert "teacher" in message and "is a distillation (student) checkpoint" in message
    with pytest.raises(SystemExit) as err:
        play.main(["--task", "point_ctrl", "--no_video", "--checkpoint", student_checkpoint])
    assert "is a distillation (student) checkpoint" in str(err.value.code)


def test_checkpoints_carry_kind_task_and_configs(teacher_checkpoint):
    saved = torch.load(teacher_checkpoint, weights_only=True)
    run = saved["run"]
    assert run["kind"] == "ppo" and run["task"] == "point_ctrl"
    assert run["env_entry_point"].endswith(":PointCtrlEnv")
    assert run["env_cfg"]["scene"]["num_envs"] == 16 and run["agent_cfg"]["experiment_name"] == "point_ctrl"


# --------------------------------------------------------------------------------- run folders and lookups (item 2)
def test_lookups_skip_incomplete_runs_and_say_so(log_dir, teacher_checkpoint, capsys):
    good = main([*PPO, "--max_iterations", "1"])["log_dir"]
    experiment = os.path.dirname(good)
    assert os.path.isfile(os.path.join(good, RUN_MARKER))
    # Newer folders left by a kill before the first save, and by a failed start (params only).
    for name in ("2999-01-01_00-00-00", "2999-01-02_00-00-00"):
        os.makedirs(os.path.join(experiment, name, "params"))
    capsys.readouterr()
    out = main([*PPO, "--eval_only"])  # the newest complete run
    assert out["checkpoint"] == os.path.join(good, "model_0.pt")
    printed = capsys.readouterr().out
    assert printed.count("Skipping incomplete run folder") == 2
    # The distillation's teacher lookup skips them too.
    out = main([*DISTILL, "--max_iterations", "1", "agent.algorithm.phase1_iterations=1",
                "agent.algorithm.max_buffer_size=1024"])
    assert f"[info] Teacher: {os.path.join(good, 'model_0.pt')}" in capsys.readouterr().out


def test_an_untrained_run_never_becomes_a_teacher(log_dir):
    assert "agent.max_iterations=0" in error_of([*PPO, "--max_iterations", "0"])
    assert not (log_dir / "logs").exists()
    message = error_of([*DISTILL, "--max_iterations", "1", "agent.algorithm.phase1_iterations=1"])
    assert "no teacher checkpoint" in message


# ---------------------------------------------------------------------------------------------------- paths (item 8)
def test_the_default_log_root_is_the_projects_whatever_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.delenv("FOUNDATION_LOG_ROOT")
    monkeypatch.chdir(tmp_path)
    assert cli.log_root() == os.path.join(REPO, "logs", "rsl_rl")
    monkeypatch.setenv("FOUNDATION_LOG_ROOT", str(tmp_path / "elsewhere"))
    assert cli.log_root() == str(tmp_path / "elsewhere")


def test_the_log_root_flag_places_the_run(log_dir, monkeypatch):
    monkeypatch.setenv("FOUNDATION_LOG_ROOT", "unused")  # restored after the test (the flag sets it)
    run = main([*PPO, "--max_iterations", "1", "--log_root", str(log_dir / "my_runs")])["log_dir"]
    assert os.path.dirname(os.path.dirname(run)) == str(log_dir / "my_runs")
