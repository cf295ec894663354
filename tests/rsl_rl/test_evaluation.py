"""Evaluation and best-model selection on scripted runs whose outcome is known by construction.

``ScriptedEnv`` is a stand-in for a wrapped task: env i's episodes last ``lengths[i]`` steps; the outcome of an
episode is read from the policy's action on its last step (action 0 > 0.5: success; action 1: final distance;
action 2 > 0.5: crash), except that every episode after an env's first one reports a perfect outcome. So an
evaluation that counts a later episode than the first, evaluates another policy than the student, ranks by the
wrong score or resets the policy's state at the wrong time gives a different, predictable answer.
"""

from __future__ import annotations

import math

import pytest
import torch
from rsl_rl.models import MLPModel
from tensordict import TensorDict

from foundation.rsl_rl.aggregated_buffer import AggregatedBuffer
from foundation.rsl_rl.dagger import DAgger
from foundation.rsl_rl.evaluation import EvalResult, evaluate
from tests.rsl_rl.test_checkpoint import make_runner

OBS_DIM, NUM_ACTIONS = 3, 3


class ScriptedEnv:
    """rsl-rl ``VecEnv``-like env whose episode outcomes come from the policy's actions (see the module docstring).

    Args:
        lengths: Episode length of each env, policy steps.
        max_episode_length: The longest length (what ``evaluate`` bounds its loop with).
    """

    def __init__(self, lengths: list[int]) -> None:
        self.num_envs, self.num_actions, self.device = len(lengths), NUM_ACTIONS, "cpu"
        self.lengths = torch.tensor(lengths)
        self.max_episode_length = max(lengths)
        self.seeds: list[int | None] = []
        self.t = torch.zeros(self.num_envs, dtype=torch.long)
        self.episode = torch.zeros(self.num_envs, dtype=torch.long)

    def _obs(self) -> TensorDict:
        x = torch.stack([self.t.float(), self.episode.float(), torch.zeros(self.num_envs)], dim=1)
        return TensorDict({"policy": x, "teacher": x.clone()}, batch_size=[self.num_envs])

    def reset(self, seed: int | None = None):
        self.seeds.append(seed)
        self.t.zero_()
        self.episode.zero_()
        return self._obs(), {}

    def step(self, actions: torch.Tensor):
        self.t += 1
        dones = self.t >= self.lengths
        extras: dict = {"log": {}}
        ids = dones.nonzero().squeeze(-1)
        if len(ids):
            later = self.episode[ids] > 0
            a = actions[ids]
            extras["episode_outcomes"] = {
                "env_ids": ids, "success": torch.where(later, True, a[:, 0] > 0.5),
                "crash": torch.where(later, False, a[:, 2] > 0.5),
                "final_distance": torch.where(later, 0.0, a[:, 1])}
            self.t[ids] = 0
            self.episode[ids] += 1
        return self._obs(), torch.zeros(self.num_envs), dones.long(), extras


class TablePolicy(torch.nn.Module):
    """A deterministic "checkpoint": env i's action is row i of ``table`` (N, 3) on every step."""

    is_recurrent = False

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        self.table = torch.nn.Parameter(table.clone().float(), requires_grad=False)

    def forward(self, obs: TensorDict) -> torch.Tensor:
        return self.table.clone()

    def reset(self, dones=None, hidden_state=None) -> None:
        pass

    def get_hidden_state(self):
        return None


def outcome_table(success: list[bool], distance: list[float], crash: list[bool] | None = None) -> torch.Tensor:
    crash = crash or [False] * len(success)
    return torch.tensor([[float(s), d, float(c)] for s, d, c in zip(success, distance, crash)])


# ------------------------------------------------------------------------------------------------------ evaluate
def test_evaluate_counts_each_envs_first_episode_only():
    """Env 0 finishes 4 episodes, env 1 two, before env 3's first ends; only the first ones count."""
    env = ScriptedEnv([1, 2, 3, 4])
    table = outcome_table([True, False, False, True], [0.05, 0.4, 0.2, 0.08], crash=[False, False, True, False])
    result = evaluate(TablePolicy(table), env, seed=11)
    assert env.seeds == [11]
    assert result.num_episodes == 4
    assert result.success_rate == pytest.approx(0.5)
    assert result.crash_rate == pytest.approx(0.25)
    assert result.final_distance_m == pytest.approx((0.05 + 0.4 + 0.08) / 3)  # the crashed episode is left out
    assert env.episode.tolist() == [4, 2, 1, 1]  # later episodes did happen (and reported perfect outcomes)
    # Chatter over the first episodes' 1 + 2 + 3 + 4 steps only: constant actions, and a limit (1.0) in env 0's
    # success (1 step), env 2's crash (3 steps) and env 3's success (4 steps) of 3 components per step.
    assert result.action_rate == 0.0
    assert result.at_limit_fraction == pytest.approx((1 + 3 + 4) / (3 * 10))


def test_evaluate_raises_when_an_episode_never_ends():
    env = ScriptedEnv([2, 3])
    env.max_episode_length = 1  # the env lies about its episode length: env 1 never finishes in time
    with pytest.raises(RuntimeError, match="did not end"):
        evaluate(TablePolicy(outcome_table([True, True], [0.0, 0.0])), env)


class CountingPolicy(TablePolicy):
    """Recurrent stand-in: its state counts the steps since its last reset, per env; it reports success (action 0)
    only if that count equals the env's episode step, i.e. if it was reset at the start and at every episode end."""

    is_recurrent = True

    def __init__(self, num_envs: int) -> None:
        super().__init__(torch.zeros(num_envs, NUM_ACTIONS))
        self.count = torch.full((num_envs,), 100.0)  # a stale state left over from training

    def forward(self, obs: TensorDict) -> torch.Tensor:
        self.count += 1
        actions = torch.zeros(len(self.count), NUM_ACTIONS)
        actions[:, 0] = (self.count == obs["policy"][:, 0] + 1).float()
        return actions

    def reset(self, dones=None, hidden_state=None) -> None:
        if hidden_state is not None:
            self.count = hidden_state.clone()
        elif dones is None:
            self.count.zero_()
        else:
            self.count[dones.bool()] = 0.0

    def get_hidden_state(self):
        return self.count.clone()


def test_evaluate_resets_the_policy_state_at_the_start():
    result = evaluate(CountingPolicy(3), ScriptedEnv([2, 3, 4]))
    assert result.success_rate == 1.0


# ---------------------------------------------------------------------------------------------------------- score
def test_score_is_success_rate_minus_weighted_final_distance():
    assert EvalResult(0.9, 0.0, 0.05, 10).score(1.0) == pytest.approx(0.85)
    assert EvalResult(0.9, 0.0, 0.05, 10).score(2.0) == pytest.approx(0.8)
    assert EvalResult(0.5, 0.1, 0.02, 10).score(1.0) > EvalResult(0.5, 0.1, 0.03, 10).score(1.0)
    assert EvalResult(0.0, 1.0, float("nan"), 10).score(1.0) == -math.inf  # every episode crashed: the worst


def test_from_outcomes_aggregates_per_episode_results():
    r = EvalResult.from_outcomes(torch.tensor([True, False, True, False]), torch.tensor([False, False, False, True]),
                                 torch.tensor([0.02, 0.5, 0.04, 7.0]))
    assert (r.success_rate, r.crash_rate, r.num_episodes) == (0.5, 0.25, 4)
    assert r.final_distance_m == pytest.approx(0.56 / 3)
    assert r.as_log("Eval") == {"Eval/success_rate": 0.5, "Eval/crash_rate": 0.25,
                                "Eval/final_distance": pytest.approx(0.56 / 3)}
    assert str(r) == "success 50.00 %, crash 25.00 %, final distance 18.67 cm over 4 episodes"


def test_from_outcomes_of_no_one_or_only_crashed_episodes():
    empty = EvalResult.from_outcomes(torch.zeros(0, dtype=torch.bool), torch.zeros(0, dtype=torch.bool),
                                     torch.zeros(0))
    assert empty.num_episodes == 0
    assert all(math.isnan(v) for v in (empty.success_rate, empty.crash_rate, empty.final_distance_m))
    one = EvalResult.from_outcomes(torch.tensor([True]), torch.tensor([False]), torch.tensor([0.03]))
    assert (one.success_rate, one.crash_rate, one.num_episodes) == (1.0, 0.0, 1)
    assert one.final_distance_m == pytest.approx(0.03)
    crashed = EvalResult.from_outcomes(torch.tensor([False, False]), torch.tensor([True, True]),
                                       torch.tensor([0.5, 0.7]))
    assert (crashed.success_rate, crashed.crash_rate, crashed.num_episodes) == (0.0, 1.0, 2)
    assert math.isnan(crashed.final_distance_m) and crashed.score(1.0) == -math.inf


# ----------------------------------------------------------------------------------------- best-model selection
class TableAlg:
    """An algorithm whose policy is a :class:`TablePolicy`; ``save`` returns its table."""

    def __init__(self, policy: TablePolicy) -> None:
        self.policy, self.modes, self.learning_rate = policy, [], 1e-3

    def get_policy(self):
        return self.policy

    def eval_mode(self):
        self.modes.append("eval")

    def train_mode(self):
        self.modes.append("train")

    def save(self) -> dict:
        return {"table": self.policy.table.detach().clone(), "buffer": {"obs": torch.zeros(2)}}


def log_iteration(runner, it: int, total_it: int) -> None:
    """What rsl-rl's ``learn()`` does after training iteration ``it``: log it through the runner's logger."""
    runner.logger.log(it=it, start_it=0, total_it=total_it, collect_time=0.5, learn_time=0.5, loss_dict={},
                      learning_rate=1e-3, action_std=torch.ones(NUM_ACTIONS), rnd_weight=None)


#: Per "checkpoint" (training iteration): success per env (4 envs) and final distance per env, metres.
#: Scores (success rate - mean distance): -0.05, -0.9, 0.35, 0.45, 0.40, 0.15 → best iteration 3, worst 1;
#: success rate alone would pick iteration 2 (the first of the 75 % ones).
CHECKPOINTS = [
    ([True, False, False, False], [0.30] * 4),
    ([False] * 4, [0.90] * 4),
    ([True, True, True, False], [0.40] * 4),
    ([True, True, False, False], [0.02, 0.03, 0.07, 0.08]),
    ([True, True, True, False], [0.35] * 4),
    ([True, False, False, False], [0.10] * 4),
]


def test_best_model_is_the_checkpoint_with_the_best_score(tmp_path):
    env = ScriptedEnv([2, 1, 3, 2])
    policy = TablePolicy(outcome_table(*CHECKPOINTS[0]))
    runner = make_runner(TableAlg(policy), tmp_path)
    runner.attach_evaluation(env, interval=1, seed=5, distance_weight=1.0)
    for it, checkpoint in enumerate(CHECKPOINTS):  # what rsl-rl's learn() does: train, then log the iteration
        policy.table.copy_(outcome_table(*checkpoint))
        runner.current_learning_iteration = it
        log_iteration(runner, it, len(CHECKPOINTS))
    best = torch.load(tmp_path / "best_model.pt", weights_only=True)
    assert best["infos"]["iter"] == 3 and best["iter"] == 3
    torch.testing.assert_close(best["table"], outcome_table(*CHECKPOINTS[3]))
    assert best["infos"]["eval"]["success_rate"] == pytest.approx(0.5)
    assert best["infos"]["eval"]["final_distance_m"] == pytest.approx(0.05)
    assert best["train_state"]["best_eval"] == best["infos"]["eval"]  # a resumed run keeps this best score
    assert runner.best_eval.score(1.0) == pytest.approx(0.45)
    # Every evaluation ran on the same episodes (same seed), was logged, and the policy went back to training.
    assert env.seeds == [5] * len(CHECKPOINTS)
    scalars = runner.logger.writer.scalars
    success_log = [(v, s) for k, v, s in scalars if k == "Eval/success_rate"]
    assert success_log == [(pytest.approx(r), i) for i, r in enumerate([0.25, 0.0, 0.75, 0.5, 0.75, 0.25])]
    assert runner.alg.modes == ["eval", "train"] * len(CHECKPOINTS)
    # rsl-rl's own logging still runs, before the evaluation of each iteration.
    assert [s for k, _, s in scalars if k == "Loss/learning_rate"] == list(range(len(CHECKPOINTS)))
    assert [k for k, _, s in scalars if s == 0].index("Loss/learning_rate") < \
        [k for k, _, s in scalars if s == 0].index("Eval/success_rate")
    assert "buffer" not in best  # a policy to evaluate and deploy, not a run to resume
    assert not list(tmp_path.glob("*.tmp"))


def test_evaluation_runs_every_interval_iterations_only(tmp_path):
    env = ScriptedEnv([1, 1, 1, 1])
    policy = TablePolicy(outcome_table(*CHECKPOINTS[0]))
    runner = make_runner(TableAlg(policy), tmp_path)
    runner.attach_evaluation(env, interval=3, seed=0, distance_weight=1.0)
    for it, checkpoint in enumerate(CHECKPOINTS):
        policy.table.copy_(outcome_table(*checkpoint))
        log_iteration(runner, it, len(CHECKPOINTS))
    assert [s for k, _, s in runner.logger.writer.scalars if k == "Eval/success_rate"] == [2, 5]
    assert torch.load(tmp_path / "best_model.pt", weights_only=True)["infos"]["iter"] == 2


def test_interval_zero_never_evaluates(tmp_path):
    runner = make_runner(TableAlg(TablePolicy(outcome_table(*CHECKPOINTS[0]))), tmp_path)
    runner.attach_evaluation(ScriptedEnv([1, 1, 1, 1]), interval=0, seed=0)
    log_iteration(runner, 0, 1)
    assert not [k for k, _, _ in runner.logger.writer.scalars if k.startswith("Eval/")]
    assert not (tmp_path / "best_model.pt").exists() and runner.best_eval is None


def test_only_the_process_with_the_writer_evaluates(tmp_path):
    """In a distributed run every process calls the hook; ranks > 0 have no writer and neither evaluate nor save."""
    env = ScriptedEnv([1, 1, 1, 1])
    runner = make_runner(TableAlg(TablePolicy(outcome_table(*CHECKPOINTS[3]))), tmp_path)
    runner.logger.writer = None
    runner.attach_evaluation(env, interval=1, seed=0)
    log_iteration(runner, 0, 1)
    assert env.seeds == [] and runner.best_eval is None and not (tmp_path / "best_model.pt").exists()


def test_the_default_distance_weight_is_one_centimetre_per_percent(tmp_path):
    """100 % success at 40 cm (score 0.6) beats 50 % at 5 cm (0.45) with weight 1; weight 2 would reverse it."""
    env = ScriptedEnv([1, 1])
    policy = TablePolicy(outcome_table([True, True], [0.4, 0.4]))
    runner = make_runner(TableAlg(policy), tmp_path)
    runner.attach_evaluation(env, interval=1, seed=0)
    runner.evaluate_and_keep_best(0)
    policy.table.copy_(outcome_table([True, False], [0.05, 0.05]))
    runner.evaluate_and_keep_best(1)
    assert torch.load(tmp_path / "best_model.pt", weights_only=True)["infos"]["iter"] == 0


def test_the_distance_weight_trades_success_for_precision(tmp_path):
    """With distance_weight 0 the ranking is by success rate alone: iteration 2 (first of the 75 % ones) wins."""
    env = ScriptedEnv([1, 1, 1, 1])
    policy = TablePolicy(outcome_table(*CHECKPOINTS[0]))
    runner = make_runner(TableAlg(policy), tmp_path)
    runner.attach_evaluation(env, interval=1, seed=0, distance_weight=0.0)
    for it, checkpoint in enumerate(CHECKPOINTS):
        policy.table.copy_(outcome_table(*checkpoint))
        runner.evaluate_and_keep_best(it)
    assert torch.load(tmp_path / "best_model.pt", weights_only=True)["infos"]["iter"] == 2


def test_the_training_state_of_a_recurrent_policy_survives_an_evaluation(tmp_path):
    policy = CountingPolicy(2)
    policy.count = torch.tensor([7.0, 9.0])
    runner = make_runner(TableAlg(policy), tmp_path)
    runner.attach_evaluation(ScriptedEnv([3, 2]), interval=1, seed=0)
    assert runner.evaluate_and_keep_best(0).success_rate == 1.0
    assert policy.count.tolist() == [7.0, 9.0]


# --------------------------------------------------------------------------------- distillation: the student
def constant_model(obs: TensorDict, groups: dict, which: str, action: list[float]) -> MLPModel:
    """An rsl-rl MLP whose output is ``action`` whatever the observation (last layer: zero weights, bias)."""
    model = MLPModel(obs, groups, which, NUM_ACTIONS, hidden_dims=[8], activation="elu")
    last = model.mlp[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.tensor(action))
    return model


def test_a_distillation_runs_best_model_is_chosen_by_evaluating_the_student(tmp_path):
    """The teacher would succeed everywhere; the student fails at 0.3 m: the kept evaluation is the student's."""
    env = ScriptedEnv([2, 3, 1, 2])
    obs, _ = env.reset()
    groups = {"student": ["policy"], "teacher": ["teacher"]}
    student = constant_model(obs, groups, "student", [0.0, 0.3, 0.0])
    teacher = constant_model(obs, groups, "teacher", [1.0, 0.01, 0.0])
    alg = DAgger(student, teacher, AggregatedBuffer(64, env.num_envs, {"policy": OBS_DIM, "teacher": OBS_DIM},
                                                    NUM_ACTIONS))
    runner = make_runner(alg, tmp_path)
    runner.attach_evaluation(env, interval=1, seed=0)
    result = runner.evaluate_and_keep_best(4)
    assert (result.success_rate, result.final_distance_m) == (0.0, pytest.approx(0.3))
    best = torch.load(tmp_path / "best_model.pt", weights_only=True)
    assert best["infos"]["eval"]["success_rate"] == 0.0 and best["infos"]["iter"] == 4
    assert "student_state_dict" in best and "buffer" not in best
    assert alg.student.training and alg.teacher.training is False  # back in training mode (teacher stays eval)


# ------------------------------------------------------------------------------------------------- train.py seeds
def test_train_py_selects_and_reports_on_seeds_apart_from_training(log_dir, monkeypatch):
    """A 2-iteration PPO run with --seed 5: both periodic evaluations (which pick best_model.pt) run on the same
    episodes (seed 6), the final report of best_model.pt on another seed (7), none on the training seed."""
    from foundation.rsl_rl import runner as runner_module
    from foundation.rsl_rl import train
    from tests.conftest import TINY_RUN

    seeds = {"periodic": [], "final": []}

    def recording(kind):
        def wrapped(policy, env, seed=None):
            seeds[kind].append(seed)
            return evaluate(policy, env, seed=seed)
        return wrapped

    monkeypatch.setattr(runner_module, "evaluate", recording("periodic"))
    monkeypatch.setattr(train, "evaluate", recording("final"))
    out = train.main(["--task", "point_ctrl", "--num_envs", "16", "--max_iterations", "2", "--seed", "5", *TINY_RUN,
                      "agent.eval.interval=1"])
    assert seeds == {"periodic": [6, 6], "final": [7]}
    assert out["checkpoint"].endswith("best_model.pt") and out["eval"].num_episodes == 16
