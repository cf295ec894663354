"""DAgger with a recurrent (GRU) student: the masked sequence loss and the resets of the student's hidden state.

The sequences are built so that a wrong mask or a missed reset changes the answer: labels at masked steps are
1000 away from the student's output, and a state carried across an episode end changes the next action.
"""

from __future__ import annotations

import pytest
import torch
from rsl_rl.models import MLPModel, RNNModel
from tensordict import TensorDict

from foundation.rsl_rl.aggregated_buffer import AggregatedBuffer
from foundation.rsl_rl.dagger import DAgger

OBS_DIM, NUM_ACTIONS, N = 5, 3, 6


def obs_of(x: torch.Tensor) -> TensorDict:
    """Observation groups of raw features x (B, OBS_DIM); the teacher sees the same."""
    return TensorDict({"policy": x, "teacher": x.clone()}, batch_size=[x.shape[0]])


GAUSSIAN = {"class_name": "GaussianDistribution", "init_std": 0.1, "learn_std": False}
#: Student variants: (distribution_cfg, observation groups). A heteroscedastic Gaussian's network outputs mean and
#: std (its action is a slice of the output); without a distribution the output is the action; two groups are
#: concatenated feature-wise.
STUDENTS = {"gaussian": (GAUSSIAN, ["policy"]),
            "heteroscedastic": ({"class_name": "HeteroscedasticGaussianDistribution", "init_std": 0.1}, ["policy"]),
            "deterministic_two_groups": (None, ["policy", "teacher"])}


def make_recurrent_dagger(num_envs: int = N, burn_in: int = 3, gradient_length: int = 5, batch_size: int = 32,
                          student: str = "gaussian", recurrent_teacher: bool = False) -> DAgger:
    torch.manual_seed(0)
    obs = obs_of(torch.randn(num_envs, OBS_DIM))
    distribution_cfg, student_groups = STUDENTS[student]
    groups = {"student": student_groups, "teacher": ["teacher"]}
    teacher = RNNModel(obs, groups, "teacher", NUM_ACTIONS, hidden_dims=[16], rnn_type="gru", rnn_hidden_dim=8) \
        if recurrent_teacher else MLPModel(obs, groups, "teacher", NUM_ACTIONS, hidden_dims=[16])
    student = RNNModel(obs, groups, "student", NUM_ACTIONS, hidden_dims=[16], rnn_type="gru", rnn_hidden_dim=8,
                       obs_normalization=True, distribution_cfg=distribution_cfg)
    buffer = AggregatedBuffer(num_envs * 40, num_envs, {"policy": OBS_DIM, "teacher": OBS_DIM}, NUM_ACTIONS)
    return DAgger(student, teacher, buffer, phase1_iterations=0, batch_size=batch_size, burn_in=burn_in,
                  gradient_length=gradient_length, num_gradient_steps=1)


def fill(alg: DAgger, steps: int, done_prob: float = 0.2, seed: int = 1) -> None:
    """Insert ``steps`` env steps of random observations and labels, with episode ends at random."""
    gen = torch.Generator().manual_seed(seed)
    n = alg.buffer.num_envs
    for _ in range(steps):
        x = torch.randn(n, OBS_DIM, generator=gen)
        alg.buffer.add({"policy": x, "teacher": x.clone()}, torch.randn(n, NUM_ACTIONS, generator=gen),
                       torch.zeros(n, NUM_ACTIONS), torch.zeros(n, dtype=torch.bool),
                       torch.rand(n, generator=gen) < done_prob)


def deployed_actions(student: RNNModel, obs: dict[str, torch.Tensor]) -> torch.Tensor:
    """The student's deterministic actions (L, B, A) along windows (L, B, D), run step by step from a reset, as on
    a robot."""
    hidden = student.get_hidden_state()
    student.reset()
    with torch.no_grad():
        actions = torch.stack([student(obs_of(obs["policy"][t])) for t in range(obs["policy"].shape[0])])
    student.reset(hidden_state=hidden)
    return actions


# -------------------------------------------------------------------------------------------------------- loss
@pytest.mark.parametrize("student", list(STUDENTS))
@pytest.mark.parametrize("burn_in", [0, 3])
def test_the_recurrent_loss_counts_exactly_the_unmasked_steps(burn_in, student):
    """Labels are the deployed student's actions + 0.1 on trained steps and + 1000 on masked ones: the loss is
    exactly 0.1² = 0.01 (MSE) if and only if the masked steps are left out and the windows run from a zero state
    (and the loss is on the actions the student deploys, from all its observation groups)."""
    alg = make_recurrent_dagger(burn_in=burn_in, student=student)
    fill(alg, 30)
    sample = alg.buffer.sample_sequences
    seen = {}

    def labelled(batch_size, length, burn, generator=None):
        obs, _, mask = sample(batch_size, length, burn, generator)
        actions = deployed_actions(alg.student, obs)
        seen["mask"] = mask
        return obs, torch.where(mask.unsqueeze(-1), actions + 0.1, actions + 1000.0), mask

    alg.buffer.sample_sequences = labelled
    loss = alg._recurrent_loss()
    mask = seen["mask"]
    assert mask.shape == (burn_in + 5, 32) and mask.any() and not mask.all()
    if burn_in:
        assert not mask[:burn_in].all()  # some windows start mid-episode: their burn-in prefix is masked
    assert loss.item() == pytest.approx(0.01, rel=1e-4)


def test_a_single_trained_step_gives_that_steps_loss():
    """One window of one step: the loss is that step's 0.1² (a mean over the one unmasked step, not halved)."""
    alg = make_recurrent_dagger(burn_in=0, gradient_length=1, batch_size=1)
    fill(alg, 5)
    sample = alg.buffer.sample_sequences

    def labelled(batch_size, length, burn, generator=None):
        obs, _, mask = sample(batch_size, length, burn, generator)
        assert mask.sum() == 1
        return obs, deployed_actions(alg.student, obs) + 0.1, mask

    alg.buffer.sample_sequences = labelled
    assert alg._recurrent_loss().item() == pytest.approx(0.01, rel=1e-4)


def test_masked_labels_do_not_move_the_student():
    """One update with wild labels on the masked steps changes the student's weights exactly as one with the masked
    labels equal to the trained ones' (same sampled windows)."""
    weights = []
    for masked_offset in (0.1, 1000.0):
        alg = make_recurrent_dagger()
        fill(alg, 30)
        sample = alg.buffer.sample_sequences

        def labelled(batch_size, length, burn, generator=None, offset=masked_offset):
            obs, _, mask = sample(batch_size, length, burn, generator)
            actions = deployed_actions(alg.student, obs)
            return obs, torch.where(mask.unsqueeze(-1), actions + 0.1, actions + offset), mask

        alg.buffer.sample_sequences = labelled
        alg._steps_this_iteration = 0  # keep the normaliser fixed: only the gradient step differs
        torch.manual_seed(3)
        alg.update()
        weights.append({k: v.clone() for k, v in alg.student.state_dict().items()})
    for key in weights[0]:
        torch.testing.assert_close(weights[1][key], weights[0][key], atol=1e-6, rtol=0, msg=key)


# ------------------------------------------------------------------------------------------------ state resets
def test_rollouts_reset_the_students_state_at_episode_ends_only():
    """After a step in which envs 1 and 4 finished, their hidden state is zero and their next action is a fresh
    student's; the other envs keep their (non-zero) state."""
    alg = make_recurrent_dagger()
    alg.student.eval()
    gen = torch.Generator().manual_seed(2)
    xs = [torch.randn(N, OBS_DIM, generator=gen) for _ in range(5)]
    done_at = 2
    dones = torch.zeros(N, dtype=torch.long)
    dones[[1, 4]] = 1
    with torch.inference_mode():
        for t in range(4):
            alg.act(obs_of(xs[t]))
            alg.process_env_step(obs_of(xs[t + 1]), torch.zeros(N), dones if t == done_at else 0 * dones, {})
            if t == done_at:
                h = alg.student.get_hidden_state()[0]
                assert (h[[1, 4]] == 0).all()
                assert (h[[0, 2, 3, 5]].abs().sum(dim=1) > 0).all()
                alg.act(obs_of(xs[t + 1]))
                after_reset = alg.student.output_mean.clone()
                fresh = RNNModel(obs_of(xs[0]), {"student": ["policy"]}, "student", NUM_ACTIONS, hidden_dims=[16],
                                 rnn_type="gru", rnn_hidden_dim=8, obs_normalization=True,
                                 distribution_cfg={"class_name": "GaussianDistribution", "init_std": 0.1,
                                                   "learn_std": False})
                fresh.load_state_dict(alg.student.state_dict())
                expected = fresh(obs_of(xs[t + 1]))
                torch.testing.assert_close(after_reset[[1, 4]], expected[[1, 4]], atol=1e-6, rtol=0)
                assert (after_reset[[0, 2, 3, 5]] - expected[[0, 2, 3, 5]]).abs().max() > 1e-4
                break


def test_a_recurrent_teachers_state_is_reset_at_episode_ends_only():
    """A recurrent teacher (a PPO actor may be one) keeps its state in the envs that go on, as the student does."""
    alg = make_recurrent_dagger(recurrent_teacher=True)
    gen = torch.Generator().manual_seed(4)
    dones = torch.zeros(N, dtype=torch.long)
    dones[[0, 3]] = 1
    with torch.inference_mode():
        alg.act(obs_of(torch.randn(N, OBS_DIM, generator=gen)))
        alg.process_env_step(obs_of(torch.randn(N, OBS_DIM, generator=gen)), torch.zeros(N), dones, {})
    h = alg.teacher.get_hidden_state()[0]
    assert (h[[0, 3]] == 0).all()
    assert (h[[1, 2, 4, 5]].abs().sum(dim=1) > 0).all()
