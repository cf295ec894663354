"""DAgger without an env: its settings (valid boundaries, rejected values), loss types, and the student- and
teacher-driven episode metrics it logs, on transitions written by hand."""

from __future__ import annotations

import pytest
import torch
from rsl_rl.models import MLPModel
from tensordict import TensorDict

from foundation.rsl_rl.aggregated_buffer import AggregatedBuffer
from foundation.rsl_rl.dagger import DAgger

OBS_DIM, NUM_ACTIONS, N = 4, 2, 4


def make(student_kwargs: dict | None = None, **settings) -> DAgger:
    x = torch.zeros(N, OBS_DIM)
    obs = TensorDict({"policy": x, "teacher": x}, batch_size=[N])
    groups = {"student": ["policy"], "teacher": ["teacher"]}
    student = MLPModel(obs, groups, "student", NUM_ACTIONS, hidden_dims=[8], **(student_kwargs or {}))
    teacher = MLPModel(obs, groups, "teacher", NUM_ACTIONS, hidden_dims=[8])
    buffer = AggregatedBuffer(N * 10, N, {"policy": OBS_DIM, "teacher": OBS_DIM}, NUM_ACTIONS)
    return DAgger(student, teacher, buffer, **settings)


def test_boundary_settings_are_accepted():
    alg = make(phase1_iterations=0, beta_decay_iterations=1, beta_decay_rate=0.01, num_gradient_steps=1,
               batch_size=1, gradient_length=1, burn_in=0)
    assert alg.phase == 2 and alg.iteration == 0


@pytest.mark.parametrize("setting, name", [
    (dict(phase1_iterations=-1), "phase1_iterations"),
    (dict(beta_schedule="cosine"), "beta_schedule"),
    (dict(beta_decay_iterations=0), "beta_decay_iterations"),
    (dict(beta_decay_rate=0.0), "beta_decay_rate"),
    (dict(beta_decay_rate=1.0), "beta_decay_rate"),
    (dict(num_gradient_steps=0), "num_gradient_steps"),
    (dict(batch_size=0), "batch_size"),
    (dict(gradient_length=0), "gradient_length"),
    (dict(burn_in=-1), "burn_in"),
    (dict(loss_type="l1"), "loss_type"),
])
def test_each_invalid_setting_is_rejected_by_name(setting, name):
    with pytest.raises(ValueError, match=name):
        make(**setting)


def test_every_invalid_setting_is_named_in_one_error():
    with pytest.raises(ValueError) as err:
        make(phase1_iterations=-1, beta_schedule="cosine", loss_type="l1")
    assert all(name in str(err.value) for name in ("phase1_iterations", "beta_schedule", "loss_type"))


def test_a_data_parallel_dagger_is_accepted_and_saves_only_its_number_of_buffer_shards():
    """Under torchrun each process keeps its own buffer: a checkpoint records how many shards there are (each
    process writes its own file), never this process's buffer as if it were the whole dataset."""
    alg = make(save_buffer=True, multi_gpu_cfg={"global_rank": 1, "local_rank": 1, "world_size": 2})
    assert alg.is_multi_gpu and (alg.gpu_global_rank, alg.gpu_world_size) == (1, 2)
    saved = alg.save()
    assert saved["dagger_state"]["buffer_shards"] == 2 and "buffer" not in saved
    single = make(save_buffer=True).save()
    assert "buffer" in single and "buffer_shards" not in single["dagger_state"]


def test_loss_types():
    big = (torch.tensor([3.0]), torch.tensor([0.0]))
    assert make(loss_type="mse").loss_fn(*big).item() == pytest.approx(9.0)
    assert make(loss_type="huber").loss_fn(*big).item() == pytest.approx(2.5)  # δ(|x| - δ/2), δ = 1


def step(alg: DAgger, teacher_driven: list[bool], dones: list[bool], outcomes: dict | None = None,
         x: torch.Tensor | None = None) -> dict:
    """One hand-written transition (observations ``x``, default zeros) through ``process_env_step``; returns its
    extras."""
    x = torch.zeros(N, OBS_DIM) if x is None else x
    obs = TensorDict({"policy": x, "teacher": x.clone()}, batch_size=[N])
    alg._pending = {"obs": obs, "teacher": torch.zeros(N, NUM_ACTIONS), "student": torch.zeros(N, NUM_ACTIONS),
                    "teacher_driven": torch.tensor(teacher_driven), "action_error": torch.tensor(0.25)}
    extras = {} if outcomes is None else {"episode_outcomes": outcomes}
    alg.process_env_step(obs, torch.zeros(N), torch.tensor(dones, dtype=torch.long), extras)
    return extras


def test_driven_episode_metrics_count_only_episodes_driven_entirely_by_one_policy():
    """Env 1 is student-driven at every step, envs 0 and 3 teacher-driven, env 2 mixed: when all four episodes end,
    the student-driven success is env 1's alone and the teacher-driven one envs 0 and 3's. The next episodes start
    afresh."""
    alg = make(phase1_iterations=1, beta_schedule="linear", beta_decay_iterations=2)
    step(alg, [True, False, False, True], [False] * 4)
    outcomes = {"env_ids": torch.arange(4), "success": torch.tensor([True, True, False, False]),
                "final_distance": torch.tensor([0.1, 0.2, 0.3, 0.4])}
    log = step(alg, [True, False, True, True], [True] * 4, outcomes)["log"]
    assert log["DAgger/student_driven_success_rate"].item() == 1.0
    assert log["DAgger/student_driven_final_distance"].item() == pytest.approx(0.2)
    assert log["DAgger/teacher_driven_success_rate"].item() == 0.5
    assert log["DAgger/teacher_driven_final_distance"].item() == pytest.approx(0.25)
    assert log["DAgger/teacher_driven_fraction"].item() == 0.75
    assert log["DAgger/action_error"].item() == 0.25
    assert (log["DAgger/iteration"], log["DAgger/phase"], log["DAgger/beta"]) == (0.0, 1.0, 1.0)
    assert log["DAgger/buffer_size"] == 2 * N and log["DAgger/buffer_capacity"] == 10 * N
    assert log["DAgger/buffer_fill"] == pytest.approx(0.2)
    assert log["DAgger/buffer_memory_mb"] == pytest.approx(alg.buffer.memory_bytes / 2**20)
    # New episodes: env 0 student-driven only, env 2 teacher-driven only; env 0's ends.
    step(alg, [False, True, True, True], [False] * 4)
    log = step(alg, [False, False, True, False], [True, False, False, False],
               {"env_ids": torch.tensor([0]), "success": torch.tensor([False]),
                "final_distance": torch.tensor([0.9])})["log"]
    assert log["DAgger/student_driven_success_rate"].item() == 0.0
    assert log["DAgger/student_driven_final_distance"].item() == pytest.approx(0.9)
    assert "DAgger/teacher_driven_success_rate" not in log
    assert alg.buffer.total_steps == 4
    assert alg.buffer.teacher_driven[:4, 2].tolist() == [False, True, True, True]


def test_a_teacher_step_anywhere_in_an_episode_makes_it_not_student_driven_and_flags_restart_per_episode():
    """Env 0 is teacher-driven at its first step only, env 1 student-driven throughout: only env 1's episode is
    student-driven. The next episodes, all teacher-driven, are all counted as teacher-driven (the flags restart at
    every episode, whatever the previous episode was)."""
    alg = make(phase1_iterations=0)
    step(alg, [True, False, False, False], [False] * 4)
    ended = {"env_ids": torch.arange(4), "success": torch.tensor([True, False, True, True]),
             "final_distance": torch.tensor([0.1, 0.2, 0.3, 0.4])}
    log = step(alg, [False, False, True, True], [True] * 4, ended)["log"]
    assert log["DAgger/student_driven_success_rate"].item() == 0.0  # env 1 alone
    assert log["DAgger/student_driven_final_distance"].item() == pytest.approx(0.2)
    assert "DAgger/teacher_driven_success_rate" not in log  # envs 2 and 3 were student-driven at first
    ended = {"env_ids": torch.arange(4), "success": torch.tensor([True, True, False, False]),
             "final_distance": torch.tensor([0.5, 0.6, 0.7, 0.8])}
    log = step(alg, [True] * 4, [True] * 4, ended)["log"]
    assert log["DAgger/teacher_driven_success_rate"].item() == 0.5
    assert log["DAgger/teacher_driven_final_distance"].item() == pytest.approx(0.65)
    assert "DAgger/student_driven_success_rate" not in log


def test_each_update_normalises_with_exactly_the_observations_of_its_rollout():
    """The student's observation normaliser learns every transition once: after a 1-step and then a 2-step rollout
    its count and mean are those of the 3 x N observations inserted (not of the newest step only, nor of a
    transition twice)."""
    alg = make(student_kwargs={"obs_normalization": True}, phase1_iterations=0, batch_size=4, num_gradient_steps=1)
    gen = torch.Generator().manual_seed(0)
    xs = [torch.randn(N, OBS_DIM, generator=gen) * 3 + 1 for _ in range(3)]
    norm = alg.student.obs_normalizer
    step(alg, [False] * 4, [False] * 4, x=xs[0])
    alg.update()
    assert norm.count.item() == N
    torch.testing.assert_close(norm.mean, xs[0].mean(dim=0))
    for x in xs[1:]:
        step(alg, [False] * 4, [False] * 4, x=x)
    alg.update()
    assert norm.count.item() == 3 * N
    torch.testing.assert_close(norm.mean, torch.cat(xs).mean(dim=0))


def test_update_reports_the_mean_loss_of_its_gradient_steps():
    alg = make(phase1_iterations=0, batch_size=2, num_gradient_steps=3)
    gen = torch.Generator().manual_seed(1)
    for _ in range(3):
        x = torch.randn(N, OBS_DIM, generator=gen)
        alg.buffer.add({"policy": x, "teacher": x}, torch.randn(N, NUM_ACTIONS, generator=gen),
                       torch.zeros(N, NUM_ACTIONS), torch.zeros(N, dtype=torch.bool), torch.zeros(N, dtype=torch.bool))
    losses = []
    loss_of = alg._feedforward_loss

    def recorded():
        loss = loss_of()
        losses.append(loss.item())
        return loss

    alg._feedforward_loss = recorded
    result = alg.update()
    assert len(losses) == 3 and len(set(losses)) > 1
    assert result["behavior"] == pytest.approx(sum(losses) / 3)


def test_each_phase_is_announced_once_naming_who_drives(capsys):
    alg = make(student_kwargs={"distribution_cfg": {"class_name": "GaussianDistribution", "init_std": 0.1}},
               phase1_iterations=1)
    obs = TensorDict({"policy": torch.zeros(N, OBS_DIM), "teacher": torch.zeros(N, OBS_DIM)}, batch_size=[N])
    for _ in range(2):
        for _ in range(2):
            alg.act(obs)
            alg.process_env_step(obs, torch.zeros(N), torch.zeros(N, dtype=torch.long), {})
        alg.update()
    lines = [line for line in capsys.readouterr().out.splitlines() if "Phase" in line]
    assert len(lines) == 2
    assert "Phase 1" in lines[0] and "the teacher drives" in lines[0]
    assert "Phase 2" in lines[1] and "the student drives" in lines[1]


def test_a_distillation_checkpoint_restores_the_optimiser_state():
    """Resuming must go on with Adam's moments, not restart them (a silent change of the learning dynamics)."""
    alg = make(phase1_iterations=0, batch_size=8)
    gen = torch.Generator().manual_seed(0)
    for _ in range(3):
        x = torch.randn(N, OBS_DIM, generator=gen)
        alg.buffer.add({"policy": x, "teacher": x}, torch.randn(N, NUM_ACTIONS, generator=gen),
                       torch.zeros(N, NUM_ACTIONS), torch.zeros(N, dtype=torch.bool), torch.zeros(N, dtype=torch.bool))
    alg.update()
    saved = alg.save()
    fresh = make(phase1_iterations=0, batch_size=8)
    assert fresh.load(saved, None, True) is True and fresh.iteration == 1
    state, restored = alg.optimizer.state_dict()["state"], fresh.optimizer.state_dict()["state"]
    assert state and set(state) == set(restored)
    for key in state:
        for name in ("exp_avg", "exp_avg_sq"):
            assert torch.equal(restored[key][name], state[key][name]) and state[key][name].abs().sum() > 0


def test_a_plain_rsl_rl_distillation_checkpoint_loads_at_iteration_zero():
    """A checkpoint without DAgger's state (rsl-rl's own ``Distillation.save``) starts the schedule from phase 1."""
    saved = make(phase1_iterations=2).save()
    del saved["dagger_state"]
    fresh = make(phase1_iterations=2)
    fresh.iteration = 5
    assert fresh.load(saved, None, True) is True
    assert fresh.iteration == 0 and fresh.phase == 1
