"""rsl-rl runners with what training here needs on top: atomic checkpoints, safe loading, periodic evaluation.

They subclass rsl-rl's ``OnPolicyRunner``/``DistillationRunner`` (no fork): the learning loop is rsl-rl's own; an
evaluation hook runs after the logging of every ``interval``-th iteration, logs ``Eval/*`` scalars and keeps
``best_model.pt`` = the best evaluated checkpoint (``EvalResult.score``: success rate minus ``distance_weight`` x
final distance). For a distillation run the evaluated policy is the student, driving the environments alone.
"""

from __future__ import annotations

import os
import pickle

import torch
from rsl_rl.runners import DistillationRunner, OnPolicyRunner

from foundation.envs import RslRlVecEnvWrapper
from foundation.rsl_rl.evaluation import EvalResult, evaluate


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, unreadable, or not what was expected."""


def atomic_torch_save(obj: object, path: str) -> None:
    """``torch.save`` to ``path + ".tmp"``, then rename: a crash never leaves a truncated checkpoint at ``path``."""
    tmp = f"{path}.tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str, map_location: str | None = None, allow_unsafe: bool = False) -> dict:
    """Load a checkpoint dict with ``torch.load(weights_only=True)``.

    Args:
        path: Checkpoint file.
        map_location: Device to map tensors to.
        allow_unsafe: Fall back to full unpickling for checkpoints that hold arbitrary Python objects. Only for files
            you trust: unpickling can execute code.

    Raises:
        CheckpointError: if the file is missing, is not a dict, or needs unpickling and ``allow_unsafe`` is False.
    """
    if not os.path.isfile(path):
        raise CheckpointError(f"Checkpoint '{path}' does not exist.")
    try:
        loaded = torch.load(path, weights_only=True, map_location=map_location)
    except pickle.UnpicklingError as err:
        if not allow_unsafe:
            raise CheckpointError(
                f"Checkpoint '{path}' contains Python objects that torch.load(weights_only=True) refuses "
                f"({str(err).splitlines()[0]}). If you trust the file, pass --allow_unsafe_checkpoint.") from err
        loaded = torch.load(path, weights_only=False, map_location=map_location)
    except Exception as err:  # noqa: BLE001  (a corrupt file raises anything from zipfile to RuntimeError)
        raise CheckpointError(f"Checkpoint '{path}' could not be read: {err}") from err
    if not isinstance(loaded, dict):
        raise CheckpointError(f"Checkpoint '{path}' holds a {type(loaded).__name__}, not an rsl-rl checkpoint dict.")
    return loaded


class _FoundationRunnerMixin:
    """Atomic ``save``, safe ``load`` and the periodic-evaluation hook, shared by both runners."""

    allow_unsafe_checkpoint: bool = False

    def save(self, path: str, infos: dict | None = None, with_buffer: bool = True) -> None:
        """Write the algorithm state (plus iteration and ``infos``) atomically to ``path``; ``with_buffer=False``
        leaves out a DAgger dataset (``best_model.pt`` is a policy to evaluate and deploy, not a run to resume)."""
        saved = self.alg.save()
        if not with_buffer:
            saved.pop("buffer", None)
        saved["iter"] = self.current_learning_iteration
        saved["infos"] = infos
        atomic_torch_save(saved, path)
        self.logger.save_model(path, self.current_learning_iteration)

    def load(self, path: str, load_cfg: dict | None = None, strict: bool = True,
             map_location: str | None = None) -> dict | None:
        """Load models and state from ``path`` (see :func:`load_checkpoint` for the safety rules)."""
        loaded = load_checkpoint(path, map_location, self.allow_unsafe_checkpoint)
        if self.alg.load(loaded, load_cfg, strict):  # "iter" is the last completed iteration: go on after it
            self.current_learning_iteration = loaded["iter"] + 1
        return loaded.get("infos")

    def attach_evaluation(self, eval_env: RslRlVecEnvWrapper, interval: int, seed: int,
                          distance_weight: float = 1.0) -> None:
        """Evaluate the deterministic policy on ``eval_env`` every ``interval`` iterations (0: never).

        Each evaluation resets ``eval_env`` with the same ``seed``, so checkpoints are compared on the same episodes,
        and ranked by :meth:`EvalResult.score` with ``distance_weight``.
        """
        self._eval_env, self._eval_seed, self._distance_weight = eval_env, seed, distance_weight
        self.best_eval: EvalResult | None = None
        if interval <= 0:
            return
        log = self.logger.log

        def log_then_evaluate(*args, **kwargs) -> None:
            log(*args, **kwargs)
            it = kwargs["it"]
            if (it + 1) % interval == 0 and self.logger.writer is not None:
                self.evaluate_and_keep_best(it)

        self.logger.log = log_then_evaluate

    def evaluate_and_keep_best(self, it: int) -> EvalResult:
        """Evaluate now, log ``Eval/*`` at iteration ``it``, and save ``best_model.pt`` on improvement."""
        policy = self.alg.get_policy()
        hidden = policy.get_hidden_state()
        self.alg.eval_mode()
        result = evaluate(policy, self._eval_env, seed=self._eval_seed)
        self.alg.train_mode()
        policy.reset(hidden_state=hidden)
        for key, value in result.as_log("Eval").items():
            self.logger.writer.add_scalar(key, value, it)
        better = self.best_eval is None or result.score(self._distance_weight) > self.best_eval.score(
            self._distance_weight)
        if better:
            self.best_eval = result
            self.save(os.path.join(self.logger.log_dir, "best_model.pt"), infos={"eval": vars(result), "iter": it},
                      with_buffer=False)
        print(f"[eval] iteration {it}: {result}{'  (new best)' if better else ''}")
        return result


class FoundationOnPolicyRunner(_FoundationRunnerMixin, OnPolicyRunner):
    """rsl-rl ``OnPolicyRunner`` (PPO) with atomic checkpoints, safe loading and periodic evaluation."""


class FoundationDistillationRunner(_FoundationRunnerMixin, DistillationRunner):
    """rsl-rl ``DistillationRunner`` with atomic checkpoints, safe loading and student evaluation."""


RUNNERS = {"OnPolicyRunner": FoundationOnPolicyRunner, "DistillationRunner": FoundationDistillationRunner}
