"""Two-phase DAgger: rsl-rl's ``Distillation`` with a β schedule and an aggregated, device-resident dataset.

DAgger (Ross, Gordon & Bagnell, 2011) rolls out the mixture π_i = β_i·π* + (1 − β_i)·π̂_i, labels every visited
state with the expert π*, aggregates all labelled states, and retrains the learner π̂ on the aggregate. Here:

* **β** is the probability that the teacher's action drives an env step, drawn per env per step. Phase 1 is the
  first ``phase1_iterations`` iterations, β = 1 (the teacher drives). Phase 2 follows, with β from the schedule:
  ``two_phase`` (β = 0 at once: the student drives), ``linear`` (1 → 0 over ``beta_decay_iterations``) or
  ``exponential`` (β = ``beta_decay_rate``^k after k phase-2 iterations).
* Every transition (raw observation groups, teacher label, student action) goes into an
  :class:`~foundation.rsl_rl.aggregated_buffer.AggregatedBuffer` of ``max_buffer_size`` transitions on the training
  device, oldest overwritten first. ``aggregate=False`` keeps only the latest rollout (for ablations).
* Each ``update()`` takes ``num_gradient_steps`` steps on minibatches sampled from the whole buffer: single
  transitions for a feed-forward student, windows of ``burn_in + gradient_length`` steps for a recurrent one, run
  from a zero state and masked so they never cross an episode start (see ``AggregatedBuffer.sample_sequences``).

Data-parallel (torchrun, ``multi_gpu_cfg`` set): every process keeps its own buffer of ``max_buffer_size``
transitions (a shard of the dataset) on its own device and draws β and minibatches from its own random stream (seeded
by rank); each optimiser step averages the gradients of all processes (all-reduce), the observation normaliser
merges every process's statistics (rsl-rl's ``EmpiricalNormalization`` all-reduces them), and the iteration, hence
the phase and β, advance in lockstep, so the student stays bit-identical on every process.

Selected with ``algorithm.class_name = "foundation.rsl_rl.dagger:DAgger"``; rsl-rl is not modified.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn as nn
from rsl_rl.algorithms import Distillation
from rsl_rl.env import VecEnv
from rsl_rl.models import MLPModel
from rsl_rl.utils import resolve_class, resolve_obs_groups, resolve_optimizer
from tensordict import TensorDict

from foundation.rsl_rl.aggregated_buffer import AggregatedBuffer
from foundation.rsl_rl.checkpoints import CheckpointError

BETA_SCHEDULES = ("two_phase", "linear", "exponential")


def beta_at(iteration: int, phase1_iterations: int, schedule: str, decay_iterations: int, decay_rate: float) -> float:
    """β (probability that the teacher drives a step) during learning iteration ``iteration`` (0-based)."""
    if iteration < phase1_iterations:
        return 1.0
    k = iteration - phase1_iterations + 1  # phase-2 iterations including this one
    if schedule == "two_phase":
        return 0.0
    if schedule == "linear":
        return max(0.0, 1.0 - k / decay_iterations)
    return decay_rate**k


class DAgger(Distillation):
    """Two-phase DAgger over an aggregated buffer (see the module docstring).

    Args:
        student, teacher: rsl-rl models; the teacher is loaded from a PPO checkpoint's actor.
        buffer: The aggregated transition buffer.
        phase1_iterations: Iterations in which the teacher drives (β = 1).
        beta_schedule: ``"two_phase"``, ``"linear"`` or ``"exponential"`` (phase 2's β).
        beta_decay_iterations: Length of the linear decay, iterations.
        beta_decay_rate: Factor per iteration of the exponential decay, in (0, 1).
        aggregate: Keep every transition (True) or only the latest rollout (False).
        num_gradient_steps: Optimiser steps per update.
        batch_size: Transitions (feed-forward student) or sequences (recurrent student) per minibatch.
        gradient_length: Trained steps per sequence (recurrent student).
        burn_in: Steps that warm up the recurrent state before the trained steps (no loss on them).
        learning_rate, max_grad_norm, optimizer: Optimiser settings.
        loss_type: ``"mse"`` or ``"huber"`` behavior loss to the teacher's action.
        save_buffer: Store the buffer in every checkpoint, so a resumed run loses no data (data-parallel: one
            shard file per process, written by the runner; the checkpoint records how many).
        device: Training device.
        multi_gpu_cfg: rsl-rl's ``{"global_rank", "local_rank", "world_size"}`` of a data-parallel run, or None.

    Raises:
        ValueError: on an invalid setting, naming it and the valid values.
    """

    def __init__(self, student: MLPModel, teacher: MLPModel, buffer: AggregatedBuffer, *,
                 phase1_iterations: int = 20, beta_schedule: Literal["two_phase", "linear", "exponential"] = "two_phase",
                 beta_decay_iterations: int = 50, beta_decay_rate: float = 0.9, aggregate: bool = True,
                 num_gradient_steps: int = 6, batch_size: int = 128, gradient_length: int = 24, burn_in: int = 8,
                 learning_rate: float = 1e-3, max_grad_norm: float | None = 1.0, optimizer: str = "adam",
                 loss_type: Literal["mse", "huber"] = "mse", save_buffer: bool = False, device: str = "cpu",
                 multi_gpu_cfg: dict | None = None) -> None:
        errors = []
        if phase1_iterations < 0:
            errors.append(f"phase1_iterations must be >= 0, got {phase1_iterations}")
        if beta_schedule not in BETA_SCHEDULES:
            errors.append(f"beta_schedule must be one of {BETA_SCHEDULES}, got {beta_schedule!r}")
        if beta_decay_iterations < 1:
            errors.append(f"beta_decay_iterations must be >= 1, got {beta_decay_iterations}")
        if not 0.0 < beta_decay_rate < 1.0:
            errors.append(f"beta_decay_rate must be in (0, 1), got {beta_decay_rate}")
        if min(num_gradient_steps, batch_size, gradient_length) < 1 or burn_in < 0:
            errors.append("num_gradient_steps, batch_size, gradient_length must be >= 1 and burn_in >= 0")
        if loss_type not in ("mse", "huber"):
            errors.append(f"loss_type must be 'mse' or 'huber', got {loss_type!r}")
        if errors:
            raise ValueError("Invalid DAgger config: " + "; ".join(errors) + ".")
        # Distillation.__init__ is not called: it requires rsl-rl's RolloutStorage. These are the attributes its
        # inherited methods (train_mode, eval_mode, get_policy, compile, save/load helpers) rely on.
        self.device = device
        self.is_multi_gpu = multi_gpu_cfg is not None
        self.gpu_global_rank = multi_gpu_cfg["global_rank"] if multi_gpu_cfg else 0
        self.gpu_world_size = multi_gpu_cfg["world_size"] if multi_gpu_cfg else 1
        self.grad_reduce_bucket_mb = 25.0  # rsl-rl's default bucket of reduce_parameters()
        self.student, self.teacher = student.to(device), teacher.to(device)
        self._raw_student, self._raw_teacher = self.student, self.teacher
        self.optimizer = resolve_optimizer(optimizer)(self.student.parameters(), lr=learning_rate)
        self.learning_rate, self.max_grad_norm = learning_rate, max_grad_norm
        self.loss_fn = nn.functional.mse_loss if loss_type == "mse" else nn.functional.huber_loss
        self.buffer = buffer
        self.phase1_iterations, self.beta_schedule = phase1_iterations, beta_schedule
        self.beta_decay_iterations, self.beta_decay_rate = beta_decay_iterations, beta_decay_rate
        self.aggregate, self.save_buffer = aggregate, save_buffer
        self.num_gradient_steps, self.batch_size = num_gradient_steps, batch_size
        self.gradient_length, self.burn_in = gradient_length, burn_in
        self.iteration = 0  # completed updates; β and the phase of the current rollout derive from it
        self._steps_this_iteration = 0
        n = buffer.num_envs
        self._all_student = torch.ones(n, dtype=torch.bool, device=device)  # episode driven only by the student
        self._all_teacher = torch.ones(n, dtype=torch.bool, device=device)
        self._pending: dict = {}
        self._announced_phase: int | None = None
        self.teacher_loaded = False

    # ------------------------------------------------------------------------------------------- schedule
    @property
    def beta(self) -> float:
        """β of the current iteration."""
        return beta_at(self.iteration, self.phase1_iterations, self.beta_schedule, self.beta_decay_iterations,
                       self.beta_decay_rate)

    @property
    def phase(self) -> int:
        """1 while the teacher drives every step (iterations < ``phase1_iterations``), else 2."""
        return 1 if self.iteration < self.phase1_iterations else 2

    # -------------------------------------------------------------------------------------------- rollout
    def act(self, obs: TensorDict) -> torch.Tensor:
        """Actions that drive the envs: the teacher's with probability β per env, else the student's (N, A)."""
        if self.phase != self._announced_phase:  # printed once per phase, at its first step
            self._announced_phase = self.phase
            who = "the teacher drives (β = 1)" if self.phase == 1 else \
                f"the student drives ({self.beta_schedule}, β = {self.beta:.2f})"
            print(f"[DAgger] Phase {self.phase} from iteration {self.iteration}: {who}.")
        student_actions = self.student(obs, stochastic_output=True).detach()
        teacher_actions = self.teacher(obs).detach()
        teacher_driven = torch.rand(obs.batch_size[0], device=self.device) < self.beta
        self._pending = {"obs": obs, "teacher": teacher_actions, "student": student_actions,
                         "teacher_driven": teacher_driven,
                         "action_error": (self.student.output_mean - teacher_actions).square().mean()}
        return torch.where(teacher_driven.unsqueeze(1), teacher_actions, student_actions)

    def process_env_step(self, obs: TensorDict, rewards: torch.Tensor, dones: torch.Tensor,
                         extras: dict) -> None:
        """Store the transition of the last ``act``, reset recurrent state of finished episodes, add log metrics."""
        p = self._pending
        self.buffer.add({k: p["obs"][k] for k in self.buffer.obs}, p["teacher"], p["student"], p["teacher_driven"],
                        dones)
        self._all_student &= ~p["teacher_driven"]
        self._all_teacher &= p["teacher_driven"]
        log = extras.setdefault("log", {})
        outcomes = extras.get("episode_outcomes")
        if outcomes is not None:
            ids = outcomes["env_ids"]
            for who, mask in (("student", self._all_student[ids]), ("teacher", self._all_teacher[ids])):
                if mask.any():
                    log[f"DAgger/{who}_driven_success_rate"] = outcomes["success"][mask].float().mean()
                    log[f"DAgger/{who}_driven_final_distance"] = outcomes["final_distance"][mask].float().mean()
            self._all_student[ids] = True
            self._all_teacher[ids] = True
        log.update({"DAgger/iteration": float(self.iteration), "DAgger/phase": float(self.phase),
                    "DAgger/beta": self.beta, "DAgger/teacher_driven_fraction": p["teacher_driven"].float().mean(),
                    "DAgger/action_error": p["action_error"], "DAgger/buffer_size": float(len(self.buffer)),
                    "DAgger/buffer_capacity": float(self.buffer.capacity),
                    "DAgger/buffer_fill": len(self.buffer) / self.buffer.capacity,
                    "DAgger/buffer_memory_mb": self.buffer.memory_bytes / 2**20})
        self.student.reset(dones)
        self.teacher.reset(dones)
        self._steps_this_iteration += 1

    # -------------------------------------------------------------------------------------------- update
    def update(self) -> dict[str, float]:
        """Train the student on minibatches from the whole buffer (data-parallel: this process's shard, gradients
        averaged over the processes); returns ``{"behavior": mean loss}`` (this process's minibatches)."""
        if self._steps_this_iteration > 0:
            self.student.update_normalization(self.buffer.newest(self._steps_this_iteration))
        total = 0.0
        for _ in range(self.num_gradient_steps):
            loss = self._recurrent_loss() if self.student.is_recurrent else self._feedforward_loss()
            self.optimizer.zero_grad()
            loss.backward()
            if self.is_multi_gpu:
                self.reduce_parameters()
            if self.max_grad_norm:
                nn.utils.clip_grad_norm_(self.student.parameters(), self.max_grad_norm)
            self.optimizer.step()
            total += loss.item()
        if not self.aggregate:
            self.buffer.clear()
        self._steps_this_iteration = 0
        self.iteration += 1
        return {"behavior": total / self.num_gradient_steps}

    def _feedforward_loss(self) -> torch.Tensor:
        obs, labels = self.buffer.sample_transitions(self.batch_size)
        return self.loss_fn(self.student(obs), labels)

    def _recurrent_loss(self) -> torch.Tensor:
        obs, labels, mask = self.buffer.sample_sequences(self.batch_size, self.burn_in + self.gradient_length,
                                                         self.burn_in)
        s = self.student
        x = s.obs_normalizer(torch.cat([obs[g] for g in s.obs_groups], dim=-1))  # (L, B, D)
        latent, _ = s.rnn.rnn(x)  # zero initial state, as at an episode start
        out = s.mlp(latent)
        actions = s.distribution.deterministic_output(out) if s.distribution is not None else out
        per_step = self.loss_fn(actions, labels, reduction="none").mean(dim=-1)
        return (per_step * mask).sum() / mask.sum().clamp(min=1)

    # ----------------------------------------------------------------------------------------- checkpoints
    def save(self) -> dict:
        """Models, optimiser, DAgger state (iteration, phase, β) and, with ``save_buffer``, the buffer (data-parallel:
        only the number of shards, ``dagger_state["buffer_shards"]``; each process's shard is its own file)."""
        saved = super().save()
        saved["dagger_state"] = {"iteration": self.iteration, "phase": self.phase, "beta": self.beta}
        if self.save_buffer and self.is_multi_gpu:
            saved["dagger_state"]["buffer_shards"] = self.gpu_world_size
        elif self.save_buffer:
            saved["buffer"] = self.buffer.state_dict()
        return saved

    def load(self, loaded_dict: dict, load_cfg: dict | None, strict: bool) -> bool:
        """Load a PPO teacher (its ``actor_state_dict``) or a distillation checkpoint (student, teacher, optimiser,
        DAgger state; the saved buffer too when ``load_cfg["buffer"]`` is true, i.e. when resuming training).
        ``load_cfg`` and ``strict`` are rsl-rl's arguments: the checkpoint's kind decides which models are loaded,
        strictly.

        Returns:
            True when the runner should restore its iteration (a distillation checkpoint).

        Raises:
            CheckpointError: if the dict is neither, or the teacher's architecture or input size differs from
                ``agent.teacher`` / the env's ``teacher`` observation group.
        """
        if "actor_state_dict" in loaded_dict:
            self._check_teacher(loaded_dict["actor_state_dict"])
            self._raw_teacher.load_state_dict(loaded_dict["actor_state_dict"], strict=True)
            self.teacher_loaded = True
            return False
        if "student_state_dict" not in loaded_dict:
            raise CheckpointError("Checkpoint is neither a PPO teacher (no 'actor_state_dict') nor a distillation "
                                  f"checkpoint (no 'student_state_dict'); its keys are {sorted(loaded_dict)}.")
        self._raw_student.load_state_dict(loaded_dict["student_state_dict"])
        self._raw_teacher.load_state_dict(loaded_dict["teacher_state_dict"])
        self.teacher_loaded = True
        if loaded_dict.get("optimizer_state_dict"):
            self.optimizer.load_state_dict(loaded_dict["optimizer_state_dict"])
        self.iteration = int(loaded_dict.get("dagger_state", {}).get("iteration", 0))
        restored = bool(load_cfg and load_cfg.get("buffer")) and "buffer" in loaded_dict
        if restored:
            try:
                self.buffer.load_state_dict(loaded_dict["buffer"])
            except ValueError as err:
                raise CheckpointError(str(err)) from None
        who = f"[DAgger] rank {self.gpu_global_rank}:" if self.is_multi_gpu else "[DAgger]"
        print(f"{who} Loaded a distillation checkpoint at iteration {self.iteration}: phase {self.phase}, "
              f"β={self.beta:.2f}" + (f", buffer {len(self.buffer)}/{self.buffer.capacity} transitions restored."
                                      if restored else " (buffer not restored)."))
        return True

    def _check_teacher(self, state: dict) -> None:
        expected = self._raw_teacher.state_dict()
        first = "mlp.0.weight"
        if first in state and state[first].shape[1] != expected[first].shape[1]:
            raise CheckpointError(
                f"The teacher checkpoint takes {state[first].shape[1]} inputs, but the env's 'teacher' observation "
                f"group(s) {self._raw_teacher.obs_groups} have {expected[first].shape[1]}: it was trained on "
                "another task or observation layout.")
        wrong = sorted(set(state) ^ set(expected)) + [
            f"{k}: checkpoint {tuple(state[k].shape)} vs config {tuple(v.shape)}"
            for k, v in expected.items() if k in state and state[k].shape != v.shape]
        if wrong:
            raise CheckpointError("The teacher checkpoint does not match agent.teacher (it must mirror the PPO "
                                  f"actor: hidden_dims, obs_normalization, distribution_cfg). Differences: {wrong}.")

    # ----------------------------------------------------------------------------------------- construction
    @staticmethod
    def construct_algorithm(obs: TensorDict, env: VecEnv, cfg: dict, device: str) -> DAgger:
        """Build student, teacher, aggregated buffer and the algorithm from the runner's ``cfg`` dict."""
        alg_class, alg_cfg = resolve_class(cfg["algorithm"])
        student_class, student_cfg = resolve_class(cfg["student"])
        teacher_class, teacher_cfg = resolve_class(cfg["teacher"])
        cfg["obs_groups"] = resolve_obs_groups(obs, cfg["obs_groups"], ["student", "teacher"])
        student = student_class(obs, cfg["obs_groups"], "student", env.num_actions, **student_cfg).to(device)
        teacher = teacher_class(obs, cfg["obs_groups"], "teacher", env.num_actions, **teacher_cfg).to(device)
        groups = sorted(set(cfg["obs_groups"]["student"]) | set(cfg["obs_groups"]["teacher"]))
        capacity = alg_cfg.pop("max_buffer_size")
        buffer = AggregatedBuffer(capacity, env.num_envs, {g: obs[g].shape[-1] for g in groups}, env.num_actions,
                                  device)
        shard = f" per process (rank {cfg['multi_gpu']['global_rank']} of {cfg['multi_gpu']['world_size']})" \
            if cfg["multi_gpu"] else ""
        print(f"[DAgger] Aggregated buffer{shard}: {buffer.capacity} transitions ({buffer.num_slots} env steps x "
              f"{env.num_envs} envs) on {buffer.device}, {buffer.memory_bytes:,} bytes ({buffer.memory_bytes / 2**20:.1f} MiB) "
              "preallocated.")
        return alg_class(student, teacher, buffer, device=device, multi_gpu_cfg=cfg["multi_gpu"], **alg_cfg)
