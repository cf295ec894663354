"""The DAgger dataset: a fixed-capacity ring buffer of transitions, kept on the training device.

Layout is time-major, ``(num_slots, num_envs, ...)`` with ``num_slots = capacity // num_envs``: slot ``t`` holds the
transitions of every env at one env step, so an env's consecutive steps are consecutive slots and a sequence for a
recurrent student is a strided read, never a search. Inserting writes whole slots in place; once full, the oldest
slots are overwritten (ring order), nothing is shifted or copied.

Stored per transition: the **raw** (unnormalised) observation groups, the teacher's action (the label), the action
the student produced and whether the teacher drove that step (diagnostics: what the rollout did), and ``episode_start`` (this observation is the first of
an episode: a recurrent state must be zero before it, as at deployment).
"""

from __future__ import annotations

import torch


class AggregatedBuffer:
    """Ring buffer of ``capacity`` transitions (rounded down to whole env steps) on ``device``.

    Args:
        capacity: Maximum number of transitions; the buffer holds ``(capacity // num_envs) * num_envs``.
        num_envs: Environments per env step N.
        obs_dims: Size of each stored observation group, e.g. ``{"policy": 22, "teacher": 28}``.
        num_actions: Action size A.
        device: Where the storage lives (GPU memory when training on a GPU).

    Raises:
        ValueError: if ``capacity < num_envs`` (not one whole env step) or a size is not positive.
    """

    def __init__(self, capacity: int, num_envs: int, obs_dims: dict[str, int], num_actions: int,
                 device: str | torch.device = "cpu") -> None:
        if num_envs < 1 or num_actions < 1 or any(d < 1 for d in obs_dims.values()):
            raise ValueError(f"Sizes must be positive: num_envs={num_envs}, num_actions={num_actions}, "
                             f"obs_dims={obs_dims}.")
        if capacity < num_envs:
            raise ValueError(f"max_buffer_size ({capacity}) must hold at least one env step of {num_envs} envs.")
        self.num_envs, self.num_slots, self.device = num_envs, capacity // num_envs, torch.device(device)
        shape = (self.num_slots, num_envs)
        self.obs = {k: torch.zeros(*shape, d, device=self.device) for k, d in obs_dims.items()}
        self.teacher_actions = torch.zeros(*shape, num_actions, device=self.device)
        self.student_actions = torch.zeros(*shape, num_actions, device=self.device)
        self.teacher_driven = torch.zeros(shape, dtype=torch.bool, device=self.device)
        self.episode_start = torch.zeros(shape, dtype=torch.bool, device=self.device)
        self.total_steps = 0  # env steps ever inserted (logical time of the next slot)
        self._next_is_start = torch.ones(num_envs, dtype=torch.bool, device=self.device)

    # ------------------------------------------------------------------------------------------------ sizes
    @property
    def capacity(self) -> int:
        """Maximum number of transitions held."""
        return self.num_slots * self.num_envs

    @property
    def num_filled_slots(self) -> int:
        """Env steps currently held (``<= num_slots``)."""
        return min(self.total_steps, self.num_slots)

    def __len__(self) -> int:
        """Transitions currently held (``<= capacity``)."""
        return self.num_filled_slots * self.num_envs

    @property
    def memory_bytes(self) -> int:
        """Bytes of preallocated storage."""
        tensors = [*self.obs.values(), self.teacher_actions, self.student_actions, self.teacher_driven,
                   self.episode_start]
        return sum(t.numel() * t.element_size() for t in tensors)

    # ----------------------------------------------------------------------------------------------- insert
    def add(self, obs: dict[str, torch.Tensor], teacher_actions: torch.Tensor, student_actions: torch.Tensor,
            teacher_driven: torch.Tensor, dones: torch.Tensor) -> None:
        """Insert one env step: each tensor has leading dimension N (obs (N, D_g), actions (N, A), flags (N,)).

        ``dones`` are the flags returned by the env step that followed ``obs``; they mark the *next* inserted
        observation as an episode start.
        """
        self.extend({k: v.unsqueeze(0) for k, v in obs.items()}, teacher_actions.unsqueeze(0),
                    student_actions.unsqueeze(0), teacher_driven.unsqueeze(0), dones.unsqueeze(0))

    def extend(self, obs: dict[str, torch.Tensor], teacher_actions: torch.Tensor, student_actions: torch.Tensor,
               teacher_driven: torch.Tensor, dones: torch.Tensor) -> None:
        """Insert K consecutive env steps: leading dimensions (K, N). If K exceeds the capacity in env steps, only
        the newest ``num_slots`` steps are kept (as if inserted one by one).

        Raises:
            ValueError: on a missing observation group or a shape mismatch.
        """
        if set(obs) != set(self.obs):
            raise ValueError(f"Observation groups {sorted(obs)} differ from the buffer's {sorted(self.obs)}.")
        k = dones.shape[0]
        dones = dones.to(self.device, torch.bool)
        starts = torch.cat([self._next_is_start.unsqueeze(0), dones[:-1]], dim=0)
        self._next_is_start.copy_(dones[-1])  # in place: this runs under inference mode during rollouts
        keep = min(k, self.num_slots)  # older steps of an oversized insert would be overwritten anyway
        slots = (self.total_steps + k - keep + torch.arange(keep, device=self.device)) % self.num_slots
        for name, value in obs.items():
            self.obs[name][slots] = value[k - keep:].to(self.device, torch.float32)
        self.teacher_actions[slots] = teacher_actions[k - keep:].to(self.device, torch.float32)
        self.student_actions[slots] = student_actions[k - keep:].to(self.device, torch.float32)
        self.teacher_driven[slots] = teacher_driven[k - keep:].to(self.device, torch.bool)
        self.episode_start[slots] = starts[k - keep:]
        self.total_steps += k

    def clear(self) -> None:
        """Forget every transition (the storage stays allocated). The envs go on mid-episode, so the next
        observation starts an episode only where the last inserted step was done."""
        self.total_steps = 0

    # ----------------------------------------------------------------------------------------------- sample
    def sample_transitions(self, batch_size: int, generator: torch.Generator | None = None
                           ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Uniform sample (with replacement) of single transitions, for feed-forward students.

        Returns:
            ``(obs, teacher_actions)``: obs groups (B, D_g) raw, labels (B, A).

        Raises:
            RuntimeError: if the buffer is empty.
        """
        slot, env = self._sample_positions(batch_size, generator)
        return {k: v[slot, env] for k, v in self.obs.items()}, self.teacher_actions[slot, env]

    def sample_sequences(self, batch_size: int, length: int, burn_in: int = 0,
                         generator: torch.Generator | None = None
                         ) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        """Uniform sample of ``batch_size`` windows of ``length`` consecutive steps of one env, for recurrent students.

        A window starts at any held step. A recurrent student runs it from a zero state. A step is trained on
        (``loss_mask``) only if its state is the one the student has at deployment:

        * it lies before the first episode start after the window's first step (the window never crosses an
          episode start: later steps belong to another episode and are masked), and is held (not past the newest
          held step);
        * and it is past the ``burn_in`` prefix, unless the window begins at an episode start, where a zero state is
          exact and every step counts.

        Returns:
            ``(obs, teacher_actions, loss_mask)``: obs groups (L, B, D_g) raw, labels (L, B, A), mask (L, B) bool.

        Raises:
            ValueError: if ``length < 1`` or ``burn_in >= length``.
            RuntimeError: if the buffer is empty.
        """
        if length < 1 or not 0 <= burn_in < length:
            raise ValueError(f"Need length >= 1 and 0 <= burn_in < length, got length={length}, burn_in={burn_in}.")
        slot, env = self._sample_positions(batch_size, generator)
        # Logical time of each window's first step, counted from the oldest held step.
        oldest_slot = (self.total_steps - self.num_filled_slots) % self.num_slots
        age = (slot - oldest_slot) % self.num_slots
        offsets = torch.arange(length, device=self.device).unsqueeze(1)  # (L, 1)
        in_range = age.unsqueeze(0) + offsets < self.num_filled_slots  # (L, B)
        slots = (slot.unsqueeze(0) + offsets) % self.num_slots
        envs = env.unsqueeze(0).expand(length, -1)
        starts = self.episode_start[slots, envs]  # (L, B)
        crossed = torch.cumsum((starts & (offsets > 0)).int(), dim=0) > 0
        valid = in_range & ~crossed
        exact_state = starts[0].unsqueeze(0) | (offsets >= burn_in)
        obs = {k: v[slots, envs] for k, v in self.obs.items()}
        return obs, self.teacher_actions[slots, envs], valid & exact_state

    def _sample_positions(self, batch_size: int, generator: torch.Generator | None) -> tuple[torch.Tensor, ...]:
        if self.total_steps == 0:
            raise RuntimeError("Cannot sample from an empty aggregated buffer.")
        filled = self.num_filled_slots
        flat = torch.randint(filled * self.num_envs, (batch_size,), device=self.device, generator=generator)
        # While not yet full, the held slots are 0..filled-1; once full, every slot is held.
        return flat // self.num_envs, flat % self.num_envs

    def newest(self, num_steps: int) -> dict[str, torch.Tensor]:
        """Observation groups of the newest ``num_steps`` env steps, flattened to (num_steps * N, D_g)."""
        num_steps = min(num_steps, self.num_filled_slots)
        slots = (self.total_steps - num_steps + torch.arange(num_steps, device=self.device)) % self.num_slots
        return {k: v[slots].flatten(0, 1) for k, v in self.obs.items()}

    # ------------------------------------------------------------------------------------------ persistence
    def state_dict(self) -> dict:
        """Every stored tensor and the insert counter (for ``save_buffer``)."""
        return {"obs": self.obs, "teacher_actions": self.teacher_actions, "student_actions": self.student_actions,
                "teacher_driven": self.teacher_driven, "episode_start": self.episode_start,
                "total_steps": self.total_steps}

    def load_state_dict(self, state: dict) -> None:
        """Restore a :meth:`state_dict`. The next inserted observation starts an episode in every env: a resumed
        run starts from freshly reset environments and a zero recurrent state.

        Raises:
            ValueError: if the saved buffer's shapes differ from this one's (capacity, num_envs, sizes).
        """
        saved = {k: tuple(v.shape) for k, v in state["obs"].items()}
        mine = {k: tuple(v.shape) for k, v in self.obs.items()}
        if saved != mine or state["teacher_actions"].shape != self.teacher_actions.shape:
            raise ValueError(f"Saved buffer shapes {saved} do not match this buffer's {mine}; "
                             "resume with the same num_envs, max_buffer_size and observation sizes.")
        for k in self.obs:
            self.obs[k].copy_(state["obs"][k])
        for name in ("teacher_actions", "student_actions", "teacher_driven", "episode_start"):
            getattr(self, name).copy_(state[name])
        self._next_is_start.fill_(True)
        self.total_steps = int(state["total_steps"])
