"""``train.py --resume`` continues the saved run (issue 7, item 1): its saved configs with the command line on top,
the full training state (optimizer, learning rate, counters, best evaluation, DAgger phase/β/iteration/buffer), the
same run folder with monotonic TensorBoard steps, and ``max_iterations`` as the run's total."""

from __future__ import annotations

import os

import pytest
import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from foundation.rsl_rl import cli
from foundation.rsl_rl.runner import FoundationOnPolicyRunner
from foundation.rsl_rl.train import main
from tests.conftest import TINY_RUN

NUM_ENVS, STEPS = 16, 8
PPO = ["--task", "point_ctrl", "--num_envs", str(NUM_ENVS), "--seed", "3", *TINY_RUN, "agent.save_interval=1"]


def scalar_steps(run: str, tag: str) -> list[int]:
    acc = EventAccumulator(run)
    acc.Reload()
    return [e.step for e in acc.Scalars(tag)]


def test_resume_continues_the_saved_run_in_its_folder_up_to_max_iterations(log_dir, capsys):
    run = main([*PPO, "--max_iterations", "3", "agent.algorithm.learning_rate=3e-4", "agent.eval.interval=1"])[
        "log_dir"]
    # As if killed after iteration 2 was logged but before its checkpoint: TensorBoard holds steps 0..2.
    os.remove(os.path.join(run, "model_2.pt"))
    saved = torch.load(os.path.join(run, "model_1.pt"), weights_only=True)
    # A newer folder left by a run killed before its first checkpoint must not be taken for the newest run.
    os.makedirs(os.path.join(os.path.dirname(run), "2999-01-01_00-00-00", "params"))
    capsys.readouterr()

    out = main(["--task", "point_ctrl", "--resume", "--max_iterations", "5"])  # nothing else repeated
    printed = capsys.readouterr().out
    assert out["log_dir"] == run  # the same folder, no new one
    assert "[resume] agent.max_iterations: 3 -> 5" in printed
    assert "Skipping incomplete run folder" in printed and "2999-01-01_00-00-00" in printed
    agent = yaml.safe_load(open(os.path.join(run, "params", "agent.yaml")))
    env = yaml.safe_load(open(os.path.join(run, "params", "env.yaml")))
    # The saved configs are the base: num_envs, seed, learning rate and TINY_RUN's settings come back.
    assert env["scene"]["num_envs"] == NUM_ENVS and env["episode_length_s"] == 1.0 and agent["seed"] == 3
    assert agent["algorithm"]["learning_rate"] == 3e-4 and agent["max_iterations"] == 5
    # max_iterations is the run's total: iterations 2, 3, 4 were trained (resumed after iteration 1).
    last = torch.load(os.path.join(run, "model_4.pt"), weights_only=True)
    assert last["iter"] == 4 and not os.path.exists(os.path.join(run, "model_5.pt"))
    assert last["train_state"]["tot_timesteps"] == 5 * NUM_ENVS * STEPS
    assert last["train_state"]["tot_time"] > saved["train_state"]["tot_time"] > 0
    # TensorBoard: every iteration logged exactly once, in order (step 2 of the interrupted run purged).
    assert scalar_steps(run, "Loss/learning_rate") == [0, 1, 2, 3, 4]
    assert scalar_steps(run, "Eval/success_rate") == [0, 1, 2, 3, 4]


def test_resume_restores_the_optimizer_learning_rate_counters_and_best_score(log_dir):
    run = main([*PPO, "--max_iterations", "2", "agent.eval.interval=1"])["log_dir"]
    path = os.path.join(run, "model_1.pt")
    saved = torch.load(path, weights_only=True)
    saved["train_state"]["learning_rate"] = 1.5e-5  # as the adaptive schedule may have left it
    saved["train_state"]["best_eval"] = {"success_rate": 1.0, "crash_rate": 0.0, "final_distance_m": 0.01,
                                         "num_episodes": 16}
    torch.save(saved, path)

    from foundation.rsl_rl.train import build_env
    from foundation.rsl_rl.runner_cfg import to_rsl_rl_dict
    from tests.conftest import point_ctrl_cfg

    env_cfg, agent_cfg = point_ctrl_cfg(NUM_ENVS, 3, episode_length_s=1.0)
    agent_cfg.num_steps_per_env = STEPS
    runner = FoundationOnPolicyRunner(build_env("point_ctrl", env_cfg), to_rsl_rl_dict(agent_cfg), log_dir=run)
    runner.load(path, resume=True)
    assert runner.current_learning_iteration == 2
    assert runner.alg.learning_rate == 1.5e-5
    for group, saved_group in zip(runner.alg.optimizer.state_dict()["state"].values(),
                                  saved["optimizer_state_dict"]["state"].values()):
        assert torch.equal(group["exp_avg"], saved_group["exp_avg"])
    assert runner.logger.tot_timesteps == 2 * NUM_ENVS * STEPS
    assert runner.best_eval is not None and runner.best_eval.success_rate == 1.0

    # In a resumed run with evaluations, the untrained policy never beats the restored best score.
    best = open(os.path.join(run, "best_model.pt"), "rb").read()
    main(["--task", "point_ctrl", "--resume", "--max_iterations", "4", "agent.eval.interval=1"])
    assert open(os.path.join(run, "best_model.pt"), "rb").read() == best


def test_resume_of_a_distillation_restores_phase_beta_iteration_and_buffer(teacher_checkpoint, log_dir, capsys):
    first = main(["--task", "distillation", "--checkpoint", str(teacher_checkpoint), "--num_envs", str(NUM_ENVS),
                  "--max_iterations", "2", *TINY_RUN, "agent.save_interval=1", "agent.algorithm.phase1_iterations=1",
                  "agent.algorithm.beta_schedule=exponential", "agent.algorithm.beta_decay_rate=0.5",
                  "agent.algorithm.save_buffer=true", f"agent.algorithm.max_buffer_size={NUM_ENVS * 64}"])
    run = first["log_dir"]
    capsys.readouterr()
    # Resumed without repeating a single override: phase, β schedule and buffer settings come from the run.
    out = main(["--task", "distillation", "--resume", "--max_iterations", "3"])
    printed = capsys.readouterr().out
    assert out["log_dir"] == run
    assert f"at iteration 2: phase 2, β=0.25, buffer {2 * STEPS * NUM_ENVS}/{NUM_ENVS * 64} transitions " \
           "restored" in printed
    final = torch.load(os.path.join(run, "model_2.pt"), weights_only=True)
    assert final["dagger_state"] == {"iteration": 3, "phase": 2, "beta": pytest.approx(0.125)}
    # The dataset of the first two iterations is still there: 3 iterations of env steps in all.
    assert final["buffer"]["total_steps"] == 3 * STEPS
    assert final["run"]["kind"] == "distillation" and final["run"]["task"] == "distillation"


def test_a_finished_run_is_not_resumed_without_more_iterations(log_dir):
    main([*PPO, "--max_iterations", "2"])
    with pytest.raises(cli.UsageError) as err:
        main(["--task", "point_ctrl", "--resume"])
    message = str(err.value.code)
    assert "trained 2 of agent.max_iterations=2" in message and "--max_iterations > 2" in message


def test_resume_refuses_a_checkpoint_of_another_task(log_dir, teacher_checkpoint):
    with pytest.raises(cli.UsageError) as err:
        main(["--task", "distillation", "--resume", "--checkpoint", str(teacher_checkpoint)])
    assert "is a PPO (teacher) checkpoint" in str(err.value.code)
