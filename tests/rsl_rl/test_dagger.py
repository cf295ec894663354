"""Two-phase DAgger: the β schedule, who drives the envs, checkpoints, teacher-loading errors, and that it learns."""

from __future__ import annotations

import math
import pathlib

import pytest
import torch
from rsl_rl.models import MLPModel, RNNModel
from tensordict import TensorDict

from foundation.envs import RslRlVecEnvWrapper
from foundation.rsl_rl.aggregated_buffer import AggregatedBuffer
from foundation.rsl_rl.dagger import DAgger, beta_at
from foundation.rsl_rl.runner import CheckpointError, FoundationDistillationRunner, FoundationOnPolicyRunner
from foundation.rsl_rl.runner_cfg import to_rsl_rl_dict
from foundation.rsl_rl.train import main
from foundation.tasks import make_env
from tests.conftest import TINY_RUN, point_ctrl_cfg

NUM_ENVS = 16
STEPS_PER_ITERATION = 8


class Note:
    """An arbitrary Python object: a checkpoint holding one needs full unpickling."""

    def __init__(self, text: str = "trust me") -> None:
        self.text = text


# ------------------------------------------------------------------------------------------------------ schedule
@pytest.mark.parametrize("schedule", ["two_phase", "linear", "exponential"])
def test_beta_is_one_during_phase_one(schedule):
    assert all(beta_at(i, 5, schedule, 4, 0.5) == 1.0 for i in range(5))


def test_beta_two_phase_drops_to_zero_at_the_phase_switch():
    assert [beta_at(i, 3, "two_phase", 4, 0.5) for i in range(7)] == [1, 1, 1, 0, 0, 0, 0]


def test_beta_linear_decays_to_zero_over_the_decay_iterations():
    betas = [beta_at(i, 2, "linear", 4, 0.5) for i in range(9)]
    # Phase-2 iteration k = i - P + 1 (1-based) has β = max(0, 1 - k / D).
    assert betas == pytest.approx([1, 1, 0.75, 0.5, 0.25, 0, 0, 0, 0])


def test_beta_exponential_decays_by_the_rate_per_phase_two_iteration():
    betas = [beta_at(i, 2, "exponential", 4, 0.5) for i in range(6)]
    assert betas == pytest.approx([1, 1, 0.5, 0.25, 0.125, 0.0625])


def test_beta_without_phase_one_starts_in_phase_two():
    assert beta_at(0, 0, "two_phase", 4, 0.5) == 0.0
    assert beta_at(0, 0, "exponential", 4, 0.9) == pytest.approx(0.9)


# -------------------------------------------------------------------------------------------- DAgger on the env
def dagger_runner(teacher_checkpoint=None, num_envs: int = NUM_ENVS, **algorithm) -> FoundationDistillationRunner:
    """A DAgger runner on point_ctrl (16 envs, 8 steps per iteration, light updates), teacher loaded if given."""
    env_cfg, agent_cfg = point_ctrl_cfg(num_envs, seed=0, task="distillation", episode_length_s=1.0)
    agent_cfg.num_steps_per_env = STEPS_PER_ITERATION
    alg = agent_cfg.algorithm
    alg.max_buffer_size = num_envs * 64
    alg.num_gradient_steps, alg.batch_size, alg.gradient_length, alg.burn_in = 2, 16, 4, 2
    for key, value in algorithm.items():
        assert hasattr(alg, key), key
        setattr(alg, key, value)
    env = RslRlVecEnvWrapper(make_env("distillation", env_cfg))
    runner = FoundationDistillationRunner(env, to_rsl_rl_dict(agent_cfg), log_dir=None, device="cpu")
    if teacher_checkpoint is not None:
        runner.load(str(teacher_checkpoint))
    return runner


def test_the_teacher_drives_until_the_configured_iteration_then_the_student(teacher_checkpoint):
    runner = dagger_runner(teacher_checkpoint, phase1_iterations=2, beta_schedule="two_phase")
    alg = runner.alg
    assert isinstance(alg, DAgger) and alg.teacher_loaded
    seen = []
    process = alg.process_env_step

    def spy(obs, rewards, dones, extras):
        driven = alg._pending["teacher_driven"].clone()
        process(obs, rewards, dones, extras)
        seen.append((alg.iteration, alg.phase, alg.beta, bool(driven.all()), bool(driven.any()),
                     extras["log"]["DAgger/phase"], extras["log"]["DAgger/beta"]))

    alg.process_env_step = spy
    runner.learn(3)

    assert len(seen) == 3 * STEPS_PER_ITERATION
    for step, (iteration, phase, beta, all_teacher, any_teacher, log_phase, log_beta) in enumerate(seen):
        expected_iteration = step // STEPS_PER_ITERATION
        assert iteration == expected_iteration
        if expected_iteration < 2:
            assert (phase, beta, all_teacher, log_phase, log_beta) == (1, 1.0, True, 1.0, 1.0), step
        else:
            assert (phase, beta, any_teacher, log_phase, log_beta) == (2, 0.0, False, 2.0, 0.0), step
    assert alg.iteration == 3 and runner.current_learning_iteration == 2

    # The aggregated buffer records the same: phase-1 steps teacher-driven, phase-2 steps student-driven.
    buf = alg.buffer
    assert buf.total_steps == 3 * STEPS_PER_ITERATION and len(buf) == 3 * STEPS_PER_ITERATION * NUM_ENVS
    assert buf.teacher_driven[:2 * STEPS_PER_ITERATION].all()
    assert not buf.teacher_driven[2 * STEPS_PER_ITERATION:3 * STEPS_PER_ITERATION].any()


def test_without_aggregation_each_update_sees_only_the_latest_rollout(teacher_checkpoint):
    runner = dagger_runner(teacher_checkpoint, phase1_iterations=1, aggregate=False)
    sizes = []
    update = runner.alg.update

    def spy():
        sizes.append(len(runner.alg.buffer))
        return update()

    runner.alg.update = spy
    runner.learn(3)  # rollouts run under inference mode, the clearing after each update outside it
    assert sizes == [STEPS_PER_ITERATION * NUM_ENVS] * 3
    assert len(runner.alg.buffer) == 0


def test_act_uses_the_teachers_action_with_probability_beta(teacher_checkpoint):
    runner = dagger_runner(teacher_checkpoint, phase1_iterations=1, beta_schedule="linear", beta_decay_iterations=2)
    alg = runner.alg
    alg.eval_mode()
    obs = runner.env.get_observations()
    teacher_actions = alg.teacher(obs)

    # β = 1: exactly the teacher's deterministic action.
    alg.iteration = 0
    assert alg.beta == 1.0
    alg.student.reset()
    torch.testing.assert_close(alg.act(obs), teacher_actions, atol=0, rtol=0)

    # β = 0: exactly the student's (stochastic) action, from the same random draw.
    alg.iteration = 3
    assert alg.beta == 0.0
    alg.student.reset()
    torch.manual_seed(7)
    actions = alg.act(obs)
    alg.student.reset()
    torch.manual_seed(7)
    torch.testing.assert_close(actions, alg.student(obs, stochastic_output=True), atol=0, rtol=0)
    assert not torch.allclose(actions, teacher_actions)

    # β = 0.5: each env step is driven by one of them, about half by each.
    alg.iteration = 1
    assert alg.beta == pytest.approx(0.5)
    big = TensorDict({k: v.repeat(256, 1) for k, v in obs.items()}, batch_size=[256 * NUM_ENVS])
    alg.student.reset()
    actions = alg.act(big)
    driven = alg._pending["teacher_driven"]
    torch.testing.assert_close(actions[driven], alg._pending["teacher"][driven], atol=0, rtol=0)
    torch.testing.assert_close(actions[~driven], alg._pending["student"][~driven], atol=0, rtol=0)
    assert 0.45 < driven.float().mean().item() < 0.55


@pytest.mark.parametrize("save_buffer", [True, False])
def test_checkpoint_round_trip_restores_the_dagger_state(teacher_checkpoint, tmp_path, save_buffer):
    runner = dagger_runner(teacher_checkpoint, phase1_iterations=1, save_buffer=save_buffer,
                           beta_schedule="exponential", beta_decay_rate=0.5)
    runner.learn(2)
    path = tmp_path / "dagger.pt"
    runner.save(str(path))
    assert not (tmp_path / "dagger.pt.tmp").exists()

    saved = torch.load(path, weights_only=True)
    assert saved["dagger_state"] == {"iteration": 2, "phase": 2, "beta": pytest.approx(0.25)}
    assert ("buffer" in saved) == save_buffer

    restored = dagger_runner(save_buffer=save_buffer, phase1_iterations=1, beta_schedule="exponential",
                             beta_decay_rate=0.5)
    restored.load(str(path), resume=True)  # what train.py --resume does
    a, b = runner.alg, restored.alg
    assert (b.iteration, b.phase, b.beta) == (2, 2, pytest.approx(0.25))
    # The runner goes on with the iteration after the saved one, the one DAgger's schedule is at.
    assert restored.current_learning_iteration == runner.current_learning_iteration + 1 == b.iteration
    assert b.teacher_loaded
    for key, value in a.student.state_dict().items():
        assert torch.equal(b.student.state_dict()[key], value), key
    for key, value in a.teacher.state_dict().items():
        assert torch.equal(b.teacher.state_dict()[key], value), key
    if save_buffer:
        assert b.buffer.total_steps == a.buffer.total_steps == 2 * STEPS_PER_ITERATION
        for group in a.buffer.obs:
            assert torch.equal(b.buffer.obs[group], a.buffer.obs[group])
        for name in ("teacher_actions", "student_actions", "teacher_driven", "episode_start"):
            assert torch.equal(getattr(b.buffer, name), getattr(a.buffer, name)), name
    else:
        assert len(b.buffer) == 0
    restored.learn(1)  # and training goes on from there
    assert b.iteration == 3 and restored.current_learning_iteration == 2


def test_a_saved_buffer_is_only_restored_when_resuming(teacher_checkpoint, tmp_path):
    runner = dagger_runner(teacher_checkpoint, phase1_iterations=1, save_buffer=True)
    runner.learn(1)
    runner.save(str(tmp_path / "dagger.pt"))
    player = dagger_runner(num_envs=NUM_ENVS, max_buffer_size=NUM_ENVS)  # as play.py / --eval_only build it
    player.load(str(tmp_path / "dagger.pt"))
    assert len(player.alg.buffer) == 0 and player.alg.teacher_loaded


def test_best_model_leaves_the_dataset_out_while_periodic_checkpoints_keep_it(teacher_checkpoint, log_dir):
    out = main(["--task", "distillation", "--num_envs", str(NUM_ENVS), "--max_iterations", "2", *TINY_RUN,
                "--checkpoint", str(teacher_checkpoint), "agent.eval.interval=1", "agent.save_interval=1",
                "agent.algorithm.phase1_iterations=1",
                f"agent.algorithm.max_buffer_size={NUM_ENVS * 64}", "agent.algorithm.save_buffer=true"])
    run = pathlib.Path(out["log_dir"])
    assert "buffer" in torch.load(run / "model_1.pt", weights_only=True)
    assert "buffer" not in torch.load(run / "best_model.pt", weights_only=True)


# --------------------------------------------------------------------------------------- teacher-loading errors
def distillation_main(*args: str) -> dict:
    return main(["--task", "distillation", "--num_envs", str(NUM_ENVS), "--max_iterations", "1", *TINY_RUN,
                 "agent.algorithm.phase1_iterations=1", f"agent.algorithm.max_buffer_size={NUM_ENVS * 64}", *args])


def test_a_missing_teacher_file_is_reported(log_dir):
    missing = log_dir / "no_such_teacher.pt"
    with pytest.raises(SystemExit) as err:
        distillation_main("--checkpoint", str(missing))
    message = str(err.value.code)
    assert "teacher" in message
    assert str(missing) in message or "no_such_teacher.pt" in message, message


def test_a_checkpoint_that_is_not_a_ppo_teacher_is_refused(log_dir):
    path = log_dir / "not_a_teacher.pt"
    torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(SystemExit) as err:
        distillation_main("--checkpoint", str(path))
    assert "actor_state_dict" in str(err.value.code)


def test_a_teacher_with_another_input_size_is_refused(log_dir):
    # A PPO actor trained on the 25-entry 'policy' group instead of the (41-entry) 'teacher' group.
    env_cfg, agent_cfg = point_ctrl_cfg(NUM_ENVS, seed=0)
    agent_cfg.obs_groups = {"actor": ["policy"], "critic": ["teacher"]}
    env = RslRlVecEnvWrapper(make_env("point_ctrl", env_cfg))
    ppo = FoundationOnPolicyRunner(env, to_rsl_rl_dict(agent_cfg), log_dir=None, device="cpu")
    path = log_dir / "policy_group_teacher.pt"
    ppo.save(str(path))
    with pytest.raises(SystemExit) as err:
        distillation_main("--checkpoint", str(path))
    message = str(err.value.code)
    assert "25 inputs" in message and str(env.unwrapped.observation_sizes()["teacher"]) in message


def test_a_checkpoint_with_pickled_objects_needs_allow_unsafe_checkpoint(log_dir, teacher_checkpoint):
    teacher = torch.load(teacher_checkpoint, weights_only=True)
    path = log_dir / "teacher_with_note.pt"
    torch.save({"actor_state_dict": teacher["actor_state_dict"], "note": Note()}, path)
    with pytest.raises(SystemExit) as err:
        distillation_main("--checkpoint", str(path))
    assert "--allow_unsafe_checkpoint" in str(err.value.code)
    out = distillation_main("--checkpoint", str(path), "--allow_unsafe_checkpoint")
    assert out["eval"].num_episodes == 16


def test_runner_load_reports_a_missing_file_as_a_checkpoint_error(tmp_path):
    runner = dagger_runner()
    with pytest.raises(CheckpointError, match="does not exist"):
        runner.load(str(tmp_path / "missing.pt"))


def test_invalid_dagger_settings_are_rejected_by_name():
    with pytest.raises(ValueError) as err:
        dagger_runner(beta_schedule="cosine", beta_decay_rate=1.5)
    assert "beta_schedule" in str(err.value) and "two_phase" in str(err.value)
    assert "beta_decay_rate" in str(err.value)


# ---------------------------------------------------------------------------------------------------- learning
OBS_DIM, NUM_ACTIONS = 8, 4


def synthetic_obs(n: int, gen: torch.Generator) -> TensorDict:
    """Random observations; the teacher sees the same quantities as the student (so it can be imitated)."""
    x = torch.randn(n, OBS_DIM, generator=gen)
    return TensorDict({"policy": x, "teacher": x.clone()}, batch_size=[n])


def make_dagger(student_kind: str, n: int) -> DAgger:
    torch.manual_seed(0)
    obs = synthetic_obs(n, torch.Generator().manual_seed(0))
    groups = {"student": ["policy"], "teacher": ["teacher"]}
    # A fixed teacher: a random MLP, a smooth known function of the observation.
    teacher = MLPModel(obs, groups, "teacher", NUM_ACTIONS, hidden_dims=[32, 32], activation="elu")
    student_kwargs = dict(hidden_dims=[64, 64], activation="elu", obs_normalization=True,
                          distribution_cfg={"class_name": "GaussianDistribution", "init_std": 0.05,
                                            "learn_std": False})
    if student_kind == "gru":
        student = RNNModel(obs, groups, "student", NUM_ACTIONS, rnn_type="gru", rnn_hidden_dim=32,
                           rnn_num_layers=1, **student_kwargs)
    else:
        student = MLPModel(obs, groups, "student", NUM_ACTIONS, **student_kwargs)
    buffer = AggregatedBuffer(n * 200, n, {"policy": OBS_DIM, "teacher": OBS_DIM}, NUM_ACTIONS)
    return DAgger(student, teacher, buffer, phase1_iterations=5, num_gradient_steps=6, batch_size=64,
                  gradient_length=8, burn_in=4, learning_rate=3e-3)


@torch.no_grad()
def imitation_error(alg: DAgger, gen: torch.Generator, steps: int = 12, n: int = 64) -> float:
    """Mean squared error between the deterministic student and the teacher along fresh sequences (zero state)."""
    hidden = alg.student.get_hidden_state()
    alg.student.reset()
    errors = []
    for _ in range(steps):
        obs = synthetic_obs(n, gen)
        errors.append((alg.student(obs) - alg.teacher(obs)).square().mean())
    alg.student.reset(hidden_state=hidden)
    return torch.stack(errors).mean().item()


def rollout_and_update(alg: DAgger, gen: torch.Generator, n: int, steps: int) -> float:
    """One DAgger iteration on synthetic observations (episodes end at random); returns the update's loss."""
    obs = synthetic_obs(n, gen)
    with torch.inference_mode():
        for _ in range(steps):
            alg.act(obs)
            obs = synthetic_obs(n, gen)
            dones = (torch.rand(n, generator=gen) < 0.05).long()
            alg.process_env_step(obs, torch.zeros(n), dones, {})
    return alg.update()["behavior"]


@pytest.mark.parametrize("student_kind", ["mlp", "gru"])
def test_dagger_updates_reduce_the_behavior_loss(student_kind):
    n = 16
    alg = make_dagger(student_kind, n)
    assert alg.student.is_recurrent == (student_kind == "gru")
    gen = torch.Generator().manual_seed(1)
    eval_gen_seed = 123
    before = imitation_error(alg, torch.Generator().manual_seed(eval_gen_seed))
    losses = [rollout_and_update(alg, gen, n, steps=8) for _ in range(40)]
    after = imitation_error(alg, torch.Generator().manual_seed(eval_gen_seed))
    assert all(math.isfinite(x) for x in losses)
    assert before > 1e-3  # the student does not imitate the teacher by chance
    assert after < 0.1 * before, (before, after)
    assert sum(losses[-5:]) / 5 < 0.1 * sum(losses[:5]) / 5, losses
    assert alg.iteration == 40 and alg.phase == 2


def test_repeated_updates_without_new_steps_keep_the_student_finite():
    """update() may be called again on the same aggregated data (no new env steps in between)."""
    n = 16
    alg = make_dagger("mlp", n)
    gen = torch.Generator().manual_seed(1)
    rollout_and_update(alg, gen, n, steps=8)
    for _ in range(3):
        loss = alg.update()["behavior"]
        assert math.isfinite(loss)
    assert all(torch.isfinite(v).all() for v in alg.student.state_dict().values())
    assert torch.isfinite(alg.student(synthetic_obs(n, gen))).all()
