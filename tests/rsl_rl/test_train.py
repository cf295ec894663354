"""``foundation.rsl_rl.train``: what a PPO run writes, checkpoint safety and reloading, override errors, ``--resume``.

Runs are tiny (32 envs, 2 iterations) and happen in a temporary working directory (the tests' log root,
``FOUNDATION_LOG_ROOT=logs/rsl_rl``, is relative to it). Resume: ``test_resume.py``.
"""

from __future__ import annotations

import glob
import os

import pytest
import torch
import yaml

from foundation.rsl_rl import cli
from foundation.rsl_rl.evaluation import EvalResult
from foundation.rsl_rl.runner import FoundationOnPolicyRunner
from foundation.rsl_rl.train import main

PPO_RUN = ["--task", "point_ctrl", "--num_envs", "32", "--max_iterations", "2", "--seed", "1",
           "agent.eval.interval=1", "agent.eval.num_episodes=16", "agent.eval.final_num_episodes=16",
           "agent.save_interval=1"]


@pytest.fixture
def loaded_runners(monkeypatch):
    """Records ``(runner, path)`` of every ``FoundationOnPolicyRunner.load`` call."""
    calls = []
    original = FoundationOnPolicyRunner.load

    def spy(self, path, *args, **kwargs):
        calls.append((self, os.path.abspath(path)))
        return original(self, path, *args, **kwargs)

    monkeypatch.setattr(FoundationOnPolicyRunner, "load", spy)
    return calls


def run_dirs(root, experiment="point_ctrl") -> list[str]:
    return sorted(glob.glob(os.path.join(str(root), "logs", "rsl_rl", experiment, "*")))


def test_ppo_run_writes_configs_checkpoints_and_events(log_dir):
    out = main(PPO_RUN)
    run = out["log_dir"]
    assert run_dirs(log_dir) == [run]

    env_yaml = yaml.safe_load(open(os.path.join(run, "params", "env.yaml")))
    agent_yaml = yaml.safe_load(open(os.path.join(run, "params", "agent.yaml")))
    assert env_yaml["scene"]["num_envs"] == 32 and env_yaml["seed"] == 1
    assert agent_yaml["max_iterations"] == 2 and agent_yaml["seed"] == 1
    assert {k: agent_yaml["eval"][k] for k in ("interval", "num_episodes", "final_num_episodes")} == {
        "interval": 1, "num_episodes": 16, "final_num_episodes": 16}

    files = set(os.listdir(run))
    assert {"model_0.pt", "model_1.pt", "best_model.pt"} <= files
    events = [f for f in files if f.startswith("events.out.tfevents.")]
    assert events
    leftovers = glob.glob(os.path.join(run, "**", "*.tmp"), recursive=True)
    assert not leftovers, f"atomic saves left temporary files: {leftovers}"

    # The periodic evaluation is logged at every iteration (interval 1).
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(run)
    acc.Reload()
    scalars = acc.Tags()["scalars"]
    assert {"Eval/success_rate", "Eval/crash_rate", "Eval/final_distance"} <= set(scalars)
    assert [e.step for e in acc.Scalars("Eval/success_rate")] == [0, 1]

    # The final evaluation ran on the best checkpoint, with the configured number of episodes.
    assert out["checkpoint"] == os.path.join(run, "best_model.pt")
    result = out["eval"]
    assert isinstance(result, EvalResult) and result.num_episodes == 16
    assert 0.0 <= result.success_rate <= 1.0 and 0.0 <= result.crash_rate <= 1.0


def test_checkpoints_load_with_weights_only_and_into_a_fresh_runner(log_dir, loaded_runners):
    run = main(PPO_RUN)["log_dir"]
    for name in ("model_0.pt", "model_1.pt", "best_model.pt"):
        ckpt = torch.load(os.path.join(run, name), weights_only=True)  # plain tensors and containers only
        assert {"actor_state_dict", "critic_state_dict", "optimizer_state_dict", "iter"} <= set(ckpt)
    assert torch.load(os.path.join(run, "model_1.pt"), weights_only=True)["iter"] == 1
    best = torch.load(os.path.join(run, "best_model.pt"), weights_only=True)
    assert best["infos"]["iter"] in (0, 1)
    assert {"success_rate", "crash_rate", "final_distance_m", "num_episodes"} <= set(best["infos"]["eval"])

    path = os.path.join(run, "model_1.pt")
    loaded_runners.clear()
    out = main(["--task", "point_ctrl", "--num_envs", "32", "--seed", "1", "--eval_only", "--checkpoint", path,
                "agent.eval.final_num_episodes=16"])
    assert out["log_dir"] is None and run_dirs(log_dir) == [run]  # evaluation only: no new run folder
    assert isinstance(out["eval"], EvalResult) and out["eval"].num_episodes == 16
    assert [p for _, p in loaded_runners] == [path]
    runner = loaded_runners[0][0]
    expected = torch.load(path, weights_only=True)["actor_state_dict"]
    actual = runner.alg.get_policy().state_dict()
    assert set(actual) == set(expected)
    for key, value in expected.items():
        assert torch.equal(actual[key], value), key


def test_a_policy_trained_with_other_model_sizes_evaluates_and_teaches_without_repeating_them(log_dir, capsys):
    run = main([*PPO_RUN, "agent.actor.hidden_dims=[16,8]", "agent.critic.hidden_dims=[16,8]"])["log_dir"]
    path = os.path.join(run, "best_model.pt")
    assert torch.load(path, weights_only=True)["actor_state_dict"]["mlp.0.weight"].shape[0] == 16

    out = main(["--task", "point_ctrl", "--num_envs", "32", "--seed", "1", "--eval_only", "--checkpoint", path,
                "agent.eval.final_num_episodes=16"])  # the default [64, 64] would not load
    assert out["eval"].num_episodes == 16
    assert "model from the checkpoint: agent.actor.hidden_dims: [64, 64] -> [16, 8]" in capsys.readouterr().out

    student = main(["--task", "distillation", "--num_envs", "32", "--max_iterations", "1", "--seed", "1",
                    "--checkpoint", path, "agent.eval.interval=0", "agent.eval.final_num_episodes=16",
                    "agent.algorithm.phase1_iterations=1"])
    assert "model from the checkpoint: agent.teacher.hidden_dims: [64, 64] -> [16, 8]" in capsys.readouterr().out
    saved = torch.load(student["checkpoint"], weights_only=True)
    assert saved["run"]["agent_cfg"]["teacher"]["hidden_dims"] == [16, 8]
    for key, value in torch.load(path, weights_only=True)["actor_state_dict"].items():
        assert torch.equal(saved["teacher_state_dict"][key], value), key


# ----------------------------------------------------------------------------------------------- override errors
def test_a_misspelt_override_fails_before_any_work_naming_the_closest_key(log_dir):
    with pytest.raises(SystemExit) as err:
        main(["--task", "point_ctrl", "env.scene.num_env=8"])
    assert "env.scene.num_envs" in str(err.value.code)
    assert not (log_dir / "logs").exists()


def test_a_wrongly_typed_override_fails_before_any_work_naming_the_key(log_dir):
    with pytest.raises(SystemExit) as err:
        main(["--task", "point_ctrl", "agent.algorithm.learning_rate=abc"])
    message = str(err.value.code)
    assert "agent.algorithm.learning_rate" in message and "float" in message
    assert not (log_dir / "logs").exists()


def test_an_unknown_task_fails_naming_the_registered_tasks(log_dir):
    with pytest.raises(SystemExit) as err:
        main(["--task", "point_ctr"])
    assert "point_ctrl" in str(err.value.code) and "distillation" in str(err.value.code)
    assert not (log_dir / "logs").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without a GPU")
def test_a_cuda_device_without_a_gpu_fails_before_any_work(log_dir):
    with pytest.raises(SystemExit) as err:
        main(["--task", "point_ctrl", "--device", "cuda:0"])
    assert "no CUDA GPU" in str(err.value.code) and "cpu" in str(err.value.code)
    assert not (log_dir / "logs").exists()


def test_eval_only_without_any_run_fails_with_a_message(log_dir):
    with pytest.raises(SystemExit) as err:
        main(["--task", "point_ctrl", "--eval_only"])
    assert "No run folder" in str(err.value.code)


def test_every_run_gets_its_own_folder_even_within_one_second(log_dir):
    """Run folders are named by start time; two runs started in the same second must not share (and overwrite) one."""
    first = cli.new_run_dir("point_ctrl", "")
    second = cli.new_run_dir("point_ctrl", "")
    assert os.path.isdir(first) and os.path.isdir(second)
    assert first != second
    assert sorted(run_dirs(log_dir)) == sorted([first, second])
