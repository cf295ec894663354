"""rsl-rl runners with what training here needs on top: atomic self-describing checkpoints, safe loading, full resume
state, periodic evaluation, and a logger that keeps the run's folder and counters across a resume.

They subclass rsl-rl's ``OnPolicyRunner``/``DistillationRunner`` (no fork) and override only ``save``/``load``; the
learning loop is rsl-rl's own. Their logger, :class:`RunLogger`, is rsl-rl's ``Logger`` configured with what a run
needs: a callback after every logged iteration (the evaluation hook, which logs ``Eval/*`` scalars and keeps
``best_model.pt`` = the best evaluated checkpoint by ``EvalResult.score``), TensorBoard steps that stay monotonic when
a run is resumed in its folder, and the git diff stored only on request (``agent.log_git_diff``) and never uploaded.
For a distillation run the evaluated policy is the student, driving the environments alone.

Under torchrun (``WORLD_SIZE > 1``) they run rsl-rl's data-parallel path on the CPU (Gloo) as well as on CUDA (NCCL):
:meth:`_FoundationRunnerMixin._configure_multi_gpu` lifts rsl-rl's CUDA-only check. Rank 0 alone logs, evaluates and
writes checkpoints; a DAgger run with ``save_buffer`` writes one buffer shard per rank next to each checkpoint and a
resume reads each rank's own (see :mod:`foundation.rsl_rl.distributed`).
"""

from __future__ import annotations

import os
from collections.abc import Callable

import torch.distributed as dist
from rsl_rl.runners import DistillationRunner, OnPolicyRunner
from rsl_rl.utils.logger import Logger
from torch.utils.tensorboard import SummaryWriter

from foundation.envs import RslRlVecEnvWrapper
from foundation.rsl_rl.checkpoints import CheckpointError  # re-exported: play.py, tests
from foundation.rsl_rl.checkpoints import KIND_OF_RUNNER, atomic_torch_save, load_checkpoint, mark_run_complete
from foundation.rsl_rl.distributed import init_process_group, process_info, shard_path
from foundation.rsl_rl.evaluation import EvalResult, evaluate


class LoggerStartError(RuntimeError):
    """The external logger (wandb) could not start."""


class RunLogger(Logger):
    """rsl-rl's ``Logger`` with a per-iteration callback, resumable counters and opt-in git state.

    Args:
        *args, **kwargs: rsl-rl ``Logger`` arguments.
        after_log: Called with ``(it, total_it)`` (this iteration, the end of the loop) after each iteration is
            logged, in every process (only rank 0 has a writer).
        log_git_diff: Store ``git/<repo>.diff`` (status and diff of the repositories) in the run folder; it is
            never uploaded to an external logger.
    """

    def __init__(self, *args, after_log: Callable[[int, int], None] | None = None, log_git_diff: bool = False,
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
        """rsl-rl's logging of iteration ``it``, then ``after_log(it, total_it)``."""
        super().log(*args, **kwargs)
        if self.after_log is not None:
            self.after_log(kwargs["it"], kwargs["total_it"])

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

    # ------------------------------------------------------------------------------------------ distributed
    def _configure_multi_gpu(self) -> None:
        """rsl-rl's multi-process setup without its CUDA/NCCL-only restriction (rsl-rl's hook, called by its
        ``__init__``). One process: rsl-rl's own path, unchanged. Under torchrun (``WORLD_SIZE > 1``): the device must
        be ``cpu`` (Gloo) or ``cuda:<LOCAL_RANK>`` (NCCL); sets ``cfg["multi_gpu"]`` (rsl-rl's algorithms then
        all-reduce gradients and broadcast parameters) and joins the process group unless ``train.py`` already did.

        Raises:
            ValueError: if torchrun's variables are invalid or the device is not this process's.
        """
        if int(os.getenv("WORLD_SIZE", "1")) <= 1:
            super()._configure_multi_gpu()
            return
        info = process_info(True)
        expected = f"cuda:{info.local_rank}" if str(self.device).startswith("cuda") else "cpu"
        if self.device != expected:
            raise ValueError(f"Device '{self.device}' of rank {info.rank} must be '{expected}' (local rank "
                             f"{info.local_rank}).")
        self.is_distributed = True
        self.gpu_world_size, self.gpu_global_rank, self.gpu_local_rank = info.world_size, info.rank, info.local_rank
        self.cfg["multi_gpu"] = {"global_rank": info.rank, "local_rank": info.local_rank,
                                 "world_size": info.world_size}
        init_process_group(info, self.device)

    @property
    def _writes_buffer_shards(self) -> bool:
        """A distributed DAgger run with ``save_buffer``: each rank saves its own buffer next to each checkpoint."""
        return self.is_distributed and bool(getattr(self.alg, "save_buffer", False))

    def _save_buffer_shard(self, checkpoint: str) -> None:
        """Write this rank's DAgger buffer to :func:`shard_path` of ``checkpoint`` (atomically), then wait for every
        rank's: rank 0 writes ``checkpoint`` itself only once all its shards exist.

        Raises:
            CheckpointWriteError: if the shard cannot be written.
        """
        atomic_torch_save({"buffer": self.alg.buffer.state_dict(), "rank": self.gpu_global_rank,
                           "world_size": self.gpu_world_size, "iter": self.current_learning_iteration},
                          shard_path(checkpoint, self.gpu_global_rank))
        dist.barrier()

    def _attach_buffer_shard(self, path: str, loaded: dict, map_location: str | None) -> None:
        """Put this rank's saved DAgger buffer shard into ``loaded["buffer"]`` (a resume of a distributed run).

        Raises:
            CheckpointError: if the checkpoint's buffer was saved by another number of processes, or this rank's
                shard file is missing.
        """
        shards = (loaded.get("dagger_state") or {}).get("buffer_shards")
        if shards is None:
            if self.is_distributed and "buffer" in loaded:
                raise CheckpointError(f"'{path}' holds the DAgger buffer of a one-process run, but this run has "
                                      f"{self.gpu_world_size} processes, each with its own buffer: resume it with "
                                      "one process.")
            return
        if shards != self.gpu_world_size:
            raise CheckpointError(f"'{path}' was saved by {shards} processes, each with its own DAgger buffer shard, "
                                  f"but this run has {self.gpu_world_size}: resume it with torchrun "
                                  f"--nproc_per_node/--nnodes giving {shards} processes in all.")
        shard = shard_path(path, self.gpu_global_rank)
        if not os.path.isfile(shard):
            raise CheckpointError(f"the DAgger buffer shard of rank {self.gpu_global_rank} of '{path}' is missing "
                                  f"({shard}); resume from an earlier checkpoint (--checkpoint model_<it>.pt).")
        loaded["buffer"] = load_checkpoint(shard, map_location, self.allow_unsafe_checkpoint)["buffer"]

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
            saved.get("dagger_state", {}).pop("buffer_shards", None)
        saved["iter"] = self.current_learning_iteration
        saved["infos"] = infos
        saved["run"] = self.run_info
        saved["train_state"] = {
            "tot_timesteps": int(self.logger.tot_timesteps), "tot_time": float(self.logger.tot_time),
            "learning_rate": float(self.alg.learning_rate), "world_size": self.gpu_world_size,
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
        only replaced by a better one) and the learning rate. A distributed DAgger run restores each rank's own
        buffer shard.

        Raises:
            CheckpointError: if the file is unsafe or unreadable, or a saved buffer does not fit this run.
        """
        loaded = load_checkpoint(path, map_location, self.allow_unsafe_checkpoint)
        if resume:
            load_cfg = self.RESUME_LOAD_CFG
            self._attach_buffer_shard(path, loaded, map_location)
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

    def _after_iteration(self, it: int, total_it: int) -> None:
        """Every process, after iteration ``it`` is logged: the DAgger buffer shards of the checkpoint rsl-rl is about
        to write (its save points: every ``save_interval`` and the last iteration), then rank 0's evaluation."""
        if self._writes_buffer_shards and (it % self.cfg["save_interval"] == 0 or it == total_it - 1):
            self._save_buffer_shard(os.path.join(self.logger.log_dir, f"model_{it}.pt"))
        if self.logger.writer is not None and self._eval_env is not None and self._eval_interval > 0 \
                and (it + 1) % self._eval_interval == 0:
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
