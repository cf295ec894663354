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


def make(**settings) -> DAgger:
    x = torch.zeros(N, OBS_DIM)
    obs = TensorDict({"policy": x, "teacher": x}, batch_size=[N])
    groups = {"student": ["policy"], "teacher": ["teacher"]}
    student = MLPModel(obs, groups, "student", NUM_ACTIONS, hidden_dims=[8])
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


def step(alg: DAgger, teacher_driven: list[bool], dones: list[bool], outcomes: dict | None = None) -> dict:
    """One hand-written transition through ``process_env_step``; returns its extras."""
    obs = TensorDict({"policy": torch.zeros(N, OBS_DIM), "teacher": torch.zeros(N, OBS_DIM)}, batch_size=[N])
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
