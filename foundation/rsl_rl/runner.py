"""rsl-rl runners with what training here needs on top: atomic self-describing checkpoints, safe loading, full resume
state, periodic evaluation, and a logger that keeps the run's folder and counters across a resume.

They subclass rsl-rl's ``OnPolicyRunner``/``DistillationRunner`` (no fork) and override only ``save``/``load``; the
learning loop is rsl-rl's own. Their logger, :class:`RunLogger`, is rsl-rl's ``Logger`` configured with what a run
needs: a callback after every logged iteration (the evaluation hook, which logs ``Eval/*`` scalars and keeps
``best_model.pt`` = the best evaluated checkpoint by ``EvalResult.score``), TensorBoard steps that stay monotonic when
a run is resumed in its folder, and the git diff stored only on request (``agent.log_git_diff``) and never uploaded.
For a distillation run the evaluated policy is the student, driving the environments alone.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from rsl_rl.runners import DistillationRunner, OnPolicyRunner
from rsl_rl.utils.logger import Logger
from torch.utils.tensorboard import SummaryWriter

from foundation.envs import RslRlVecEnvWrapper
from foundation.rsl_rl.checkpoints import CheckpointError  # noqa: F401  (re-exported: play.py, tests)
from foundation.rsl_rl.checkpoints import KIND_OF_RUNNER, atomic_torch_save, load_checkpoint, mark_run_complete
from foundation.rsl_rl.evaluation import EvalResult, evaluate


class LoggerStartError(RuntimeError):
    """The external logger (wandb) could not start."""


class RunLogger(Logger):
    """rsl-rl's ``Logger`` with a per-iteration callback, resumable counters and opt-in git state.

    Args:
        *args, **kwargs: rsl-rl ``Logger`` arguments.
        after_log: Called with the iteration number after each iteration is logged (only when a writer exists).
        log_git_diff: Store ``git/<repo>.diff`` (status and diff of the repositories) in the run folder; it is
            never uploaded to an external logger.
    """

    def __init__(self, *args, after_log: Callable[[int], None] | None = None, log_git_diff: bool = False,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.after_log = after_log
        self.log_git_diff = log_git_diff
        self.purge_step: int | None = None

    def resume(self, iteration: int, tot_timesteps: int, tot_time: float) -> None:
        """Continue a run at ``iteration`` with the saved step and time counters: TensorBoard events written after
        the last checkpoint of the interrupted run (steps >= ``iteration``) are purged, so steps stay monotonic."""
        self.purge_step, self.tot_timesteps, self.tot_time = iteration, tot_timesteps, tot_time

    def init_logging_writer(self) -> None:
        """rsl-rl's writer; a resumed TensorBoard writer purges the steps logged after the checkpoint."""
        if self.purge_step is None or self.cfg.get("logger", "tensorboard") != "tensorboard" \
                or self.log_dir is None or self.disable_logs:
            try:
                super().init_logging_writer()
            except Exception as err:  # noqa: BLE001  (wandb raises its own errors: auth, network, timeouts)
                if self.cfg.get("logger", "tensorboard") == "tensorboard":
                    raise
                lines = str(err).strip().splitlines()
                raise LoggerStartError(f"the {self.cfg['logger'].get('class_name')} logger could not start: "
                                       f"{type(err).__name__}: {lines[0] if lines else ''}") from None
            return
        self.writer = SummaryWriter(log_dir=self.log_dir, flush_secs=10, purge_step=self.purge_step)
        self._store_code_state()

    def log(self, *args, **kwargs) -> None:
        """rsl-rl's logging of iteration ``it``, then ``after_log(it)``."""
        super().log(*args, **kwargs)
        if self.writer is not None and self.after_log is not None:
            self.after_log(kwargs["it"])

    def _store_code_state(self) -> list[str]:
        """Store the git state only when ``log_git_diff``; return no file to upload either way."""
        if self.log_git_diff:
            super()._store_code_state()
        return []


class _FoundationRunnerMixin:
    """Self-describing atomic ``save``, safe and resumable ``load``, and the periodic-evaluation hook.

    Args (keyword-only, after rsl-rl's ``env, train_cfg, log_dir, device``):
        run_info: Saved in every checkpoint under ``"run"``: ``task``, ``env_entry_point``, ``experiment_name``,
            ``env_cfg`` and ``agent_cfg`` (plain dicts); ``kind`` is added from the runner class.
        allow_unsafe_checkpoint: Allow checkpoints that need full unpickling (files you trust).
        log_git_diff: See :class:`RunLogger`.
    """

    #: ``load_cfg`` of a resume: everything, including a saved DAgger dataset.
    RESUME_LOAD_CFG: dict | None = None

    def __init__(self, env, train_cfg: dict, log_dir: str | None = None, device: str = "cpu", *,
                 run_info: dict | None = None, allow_unsafe_checkpoint: bool = False,
                 log_git_diff: bool = False) -> None:
        super().__init__(env, train_cfg, log_dir, device)
        self.logger = RunLogger(log_dir=log_dir, cfg=self.cfg, env_cfg=self.env.cfg, num_envs=self.env.num_envs,
                                is_distributed=self.is_distributed, gpu_world_size=self.gpu_world_size,
                                gpu_global_rank=self.gpu_global_rank, device=self.device,
                                after_log=self._after_iteration, log_git_diff=log_git_diff)
        self.kind = KIND_OF_RUNNER[self._rsl_rl_class().__name__]
        self.run_info = {**(run_info or {}), "kind": self.kind}
        self.allow_unsafe_checkpoint = allow_unsafe_checkpoint
        self.best_eval: EvalResult | None = None
        self._eval_env, self._eval_interval = None, 0

    @classmethod
    def _rsl_rl_class(cls) -> type:
        return next(c for c in cls.__mro__ if c.__name__ in KIND_OF_RUNNER)

    # -------------------------------------------------------------------------------------------- checkpoints
    def save(self, path: str, infos: dict | None = None, with_buffer: bool = True) -> None:
        """Write the algorithm state, iteration, ``infos``, the run description and the training state (logger
        counters, best evaluation, learning rate) atomically to ``path``; mark the run folder complete.

        ``with_buffer=False`` leaves out a DAgger dataset (``best_model.pt`` is a policy to evaluate and deploy, not
        a run to resume).

        Raises:
            CheckpointWriteError: if the file cannot be written (earlier checkpoints stay intact).
        """
        saved = self.alg.save()
        if not with_buffer:
            saved.pop("buffer", None)
        saved["iter"] = self.current_learning_iteration
        saved["infos"] = infos
        saved["run"] = self.run_info
        saved["train_state"] = {
            "tot_timesteps": int(self.logger.tot_timesteps), "tot_time": float(self.logger.tot_time),
            "learning_rate": float(self.alg.learning_rate),
            "best_eval": vars(self.best_eval) if self.best_eval is not None else None}
        atomic_torch_save(saved, path)
        mark_run_complete(os.path.dirname(os.path.abspath(path)), {
            k: self.run_info.get(k) for k in ("task", "kind", "experiment_name")})
        self.logger.save_model(path, self.current_learning_iteration)

    def load(self, path: str, load_cfg: dict | None = None, strict: bool = True,
             map_location: str | None = None, resume: bool = False) -> dict | None:
        """Load models and state from ``path`` (see :func:`load_checkpoint` for the safety rules).

        With ``resume``, also the whole training state: the DAgger dataset when saved, the logger's step and time
        counters (TensorBoard continues at the next iteration), the best evaluation so far (``best_model.pt`` is
        only replaced by a better one) and the learning rate.
        """
        loaded = load_checkpoint(path, map_location, self.allow_unsafe_checkpoint)
        if resume:
            load_cfg = self.RESUME_LOAD_CFG
        if self.alg.load(loaded, load_cfg, strict):  # "iter" is the last completed iteration: go on after it
            self.current_learning_iteration = loaded["iter"] + 1
            state = loaded.get("train_state") or {}
            if resume:
                self.logger.resume(self.current_learning_iteration, int(state.get("tot_timesteps", 0)),
                                   float(state.get("tot_time", 0.0)))
                if state.get("best_eval"):
                    self.best_eval = EvalResult(**state["best_eval"])
                if "learning_rate" in state:
                    self.alg.learning_rate = state["learning_rate"]
        return loaded.get("infos")

    # -------------------------------------------------------------------------------------------- evaluation
    def attach_evaluation(self, eval_env: RslRlVecEnvWrapper, interval: int, seed: int,
                          distance_weight: float = 1.0) -> None:
        """Evaluate the deterministic policy on ``eval_env`` every ``interval`` iterations (0: never).

        Each evaluation resets ``eval_env`` with the same ``seed``, so checkpoints are compared on the same episodes,
        and ranked by :meth:`EvalResult.score` with ``distance_weight``.
        """
        self._eval_env, self._eval_interval = eval_env, interval
        self._eval_seed, self._distance_weight = seed, distance_weight

    def _after_iteration(self, it: int) -> None:
        if self._eval_env is not None and self._eval_interval > 0 and (it + 1) % self._eval_interval == 0:
            self.evaluate_and_keep_best(it)

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
    """rsl-rl ``OnPolicyRunner`` (PPO) with atomic checkpoints, safe loading, resume state and periodic evaluation."""


class FoundationDistillationRunner(_FoundationRunnerMixin, DistillationRunner):
    """rsl-rl ``DistillationRunner`` with atomic checkpoints, safe loading, resume state and student evaluation."""

    RESUME_LOAD_CFG = {"buffer": True}


RUNNERS = {"OnPolicyRunner": FoundationOnPolicyRunner, "DistillationRunner": FoundationDistillationRunner}
