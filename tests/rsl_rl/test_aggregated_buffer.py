"""``AggregatedBuffer`` against a plain Python reference: a ``deque(maxlen=capacity in env steps)`` of per-step records.

Every observation carries its own identity (``obs["id"] = [global step index, env index]``), so the tests can tell
exactly which stored transition a sample came from.
"""

from __future__ import annotations

import collections
import random

import pytest
import torch

from foundation.rsl_rl.aggregated_buffer import AggregatedBuffer

NUM_ENVS = 4
CAPACITY = 50  # not a multiple of NUM_ENVS: the buffer holds 12 env steps = 48 transitions
NUM_SLOTS = CAPACITY // NUM_ENVS
NUM_ACTIONS = 2
OBS_DIMS = {"id": 2, "policy": 3}


class ReferenceBuffer:
    """The specification: the newest ``num_slots`` env steps, oldest first; a step starts an episode for an env if
    it is the first step ever inserted or the previous step's done flag was set."""

    def __init__(self, num_slots: int, num_envs: int) -> None:
        self.steps: collections.deque = collections.deque(maxlen=num_slots)
        self.next_is_start = torch.ones(num_envs, dtype=torch.bool)

    def extend(self, obs, teacher, student, driven, dones) -> None:
        for k in range(dones.shape[0]):
            self.steps.append({"obs": {g: v[k].clone() for g, v in obs.items()}, "teacher": teacher[k].clone(),
                               "student": student[k].clone(), "driven": driven[k].clone(),
                               "start": self.next_is_start.clone()})
            self.next_is_start = dones[k].bool().clone()

    def clear(self) -> None:
        self.steps.clear()  # the envs go on mid-episode: the episode-start flags carry over


class StepSource:
    """Random env steps whose ``id`` observation is (global step index, env index)."""

    def __init__(self, seed: int = 0, num_envs: int = NUM_ENVS, done_prob: float = 0.25) -> None:
        self.gen = torch.Generator().manual_seed(seed)
        self.t = 0
        self.num_envs = num_envs
        self.done_prob = done_prob

    def make(self, k: int):
        t = torch.arange(self.t, self.t + k, dtype=torch.float32)
        self.t += k
        ids = torch.stack([t.unsqueeze(1).expand(k, self.num_envs),
                           torch.arange(self.num_envs, dtype=torch.float32).expand(k, self.num_envs)], dim=-1)
        obs = {"id": ids, "policy": torch.randn(k, self.num_envs, 3, generator=self.gen)}
        teacher = torch.randn(k, self.num_envs, NUM_ACTIONS, generator=self.gen)
        student = torch.randn(k, self.num_envs, NUM_ACTIONS, generator=self.gen)
        driven = torch.rand(k, self.num_envs, generator=self.gen) < 0.5
        dones = (torch.rand(k, self.num_envs, generator=self.gen) < self.done_prob).long()
        return obs, teacher, student, driven, dones


def logical_slots(buf: AggregatedBuffer) -> torch.Tensor:
    """Storage slots of the held env steps, oldest first, from ``total_steps`` and ``num_slots``."""
    filled = min(buf.total_steps, buf.num_slots)
    oldest = (buf.total_steps - filled) % buf.num_slots
    return (oldest + torch.arange(filled)) % buf.num_slots


def assert_matches(buf: AggregatedBuffer, ref: ReferenceBuffer) -> None:
    assert len(buf) == len(ref.steps) * buf.num_envs <= buf.capacity
    slots = logical_slots(buf)
    assert len(slots) == len(ref.steps)
    for slot, step in zip(slots.tolist(), ref.steps):
        for g in OBS_DIMS:
            assert torch.equal(buf.obs[g][slot], step["obs"][g]), g
        assert torch.equal(buf.teacher_actions[slot], step["teacher"])
        assert torch.equal(buf.student_actions[slot], step["student"])
        assert torch.equal(buf.teacher_driven[slot], step["driven"])
        assert torch.equal(buf.episode_start[slot], step["start"])


def new_buffer(capacity: int = CAPACITY, num_envs: int = NUM_ENVS) -> AggregatedBuffer:
    return AggregatedBuffer(capacity, num_envs, OBS_DIMS, NUM_ACTIONS, "cpu")


def insert(buf, ref, src, k: int, use_add: bool = False) -> None:
    data = src.make(k)
    if use_add:
        assert k == 1
        buf.add(*(x[0] if not isinstance(x, dict) else {g: v[0] for g, v in x.items()} for x in data))
    else:
        buf.extend(*data)
    ref.extend(*data)


def filled_buffer(seed: int = 0, steps: int = 30, done_prob: float = 0.25):
    buf, ref, src = new_buffer(), ReferenceBuffer(NUM_SLOTS, NUM_ENVS), StepSource(seed, done_prob=done_prob)
    for _ in range(steps):
        insert(buf, ref, src, 1, use_add=True)
    return buf, ref, src


# --------------------------------------------------------------------------------------------------- insertion
def test_sizes_and_capacity_rounding():
    buf = new_buffer()
    assert buf.num_slots == 12 and buf.capacity == 48 and len(buf) == 0
    buf2 = new_buffer(capacity=48)
    assert buf2.capacity == 48


def test_random_inserts_match_the_reference_model():
    rng = random.Random(0)
    buf, ref, src = new_buffer(), ReferenceBuffer(NUM_SLOTS, NUM_ENVS), StepSource(1)
    kinds = collections.Counter()
    for _ in range(200):
        free = NUM_SLOTS - min(buf.total_steps, NUM_SLOTS)
        choice = rng.choice(["add", "small", "overflow", "huge"])
        if choice == "add":
            insert(buf, ref, src, 1, use_add=True)
        elif choice == "small":
            insert(buf, ref, src, rng.randint(1, max(1, free)))
        elif choice == "overflow":  # more than the free space, less than the capacity
            insert(buf, ref, src, rng.randint(free + 1, NUM_SLOTS))
        else:  # more than the whole capacity: only the newest num_slots steps remain
            insert(buf, ref, src, rng.randint(NUM_SLOTS + 1, 3 * NUM_SLOTS))
        kinds[choice] += 1
        assert len(buf) <= buf.capacity
        assert_matches(buf, ref)
    assert buf.total_steps == src.t
    assert min(kinds.values()) > 20


def test_episode_start_is_the_previous_steps_done_flag():
    buf, ref, src = new_buffer(), ReferenceBuffer(NUM_SLOTS, NUM_ENVS), StepSource(2)
    obs, teacher, student, driven, dones = src.make(5)
    dones[:] = 0
    dones[1, 2] = 1  # env 2's episode ends at step 1: step 2 starts a new one
    dones[3, :] = 1
    buf.extend(obs, teacher, student, driven, dones)
    starts = buf.episode_start[logical_slots(buf)]
    expected = torch.zeros(5, NUM_ENVS, dtype=torch.bool)
    expected[0] = True  # the first step ever inserted
    expected[2, 2] = True
    expected[4] = True
    assert torch.equal(starts, expected)
    # Across inserts too: the last done flag of one insert marks the first step of the next.
    obs, teacher, student, driven, dones = src.make(1)
    buf.extend(obs, teacher, student, driven, dones)
    assert not buf.episode_start[logical_slots(buf)[-1]].any()


def test_insert_validates_observation_groups():
    buf, src = new_buffer(), StepSource()
    obs, teacher, student, driven, dones = src.make(2)
    del obs["policy"]
    with pytest.raises(ValueError, match="Observation groups"):
        buf.extend(obs, teacher, student, driven, dones)


def test_newest_returns_the_latest_steps_in_order():
    buf, ref, _ = filled_buffer(steps=20)
    newest = buf.newest(3)["id"]
    expected = torch.cat([step["obs"]["id"] for step in list(ref.steps)[-3:]])
    assert torch.equal(newest, expected)
    assert buf.newest(100)["id"].shape == (NUM_SLOTS * NUM_ENVS, 2)


# ---------------------------------------------------------------------------------------------------- sampling
def held_ids(ref: ReferenceBuffer) -> set[tuple[int, int]]:
    return {(int(t), int(e)) for step in ref.steps for t, e in step["obs"]["id"].tolist()}


@pytest.mark.parametrize("steps", [5, 30])  # not yet full; full and wrapped around
def test_sample_transitions_returns_held_transitions_only_and_covers_them(steps):
    buf, ref, _ = filled_buffer(steps=steps)
    obs, labels = buf.sample_transitions(3000, generator=torch.Generator().manual_seed(0))
    assert obs["id"].shape == (3000, 2) and obs["policy"].shape == (3000, 3) and labels.shape == (3000, NUM_ACTIONS)
    by_id = {(int(t), int(e)): (step["obs"]["policy"][int(e)], step["teacher"][int(e)])
             for step in ref.steps for t, e in step["obs"]["id"].tolist()}
    sampled = [(int(t), int(e)) for t, e in obs["id"].tolist()]
    assert set(sampled) <= held_ids(ref)  # nothing overwritten, nothing never written
    assert set(sampled) == held_ids(ref)  # uniform over the held ones: 3000 draws hit each of <= 48
    for i in range(0, 3000, 97):
        policy, label = by_id[sampled[i]]
        assert torch.equal(obs["policy"][i], policy) and torch.equal(labels[i], label)


def test_sampling_after_clear_sees_only_new_data():
    buf, ref, src = filled_buffer(steps=30)
    buf.clear()
    ref.clear()
    assert len(buf) == 0 and buf.total_steps == 0
    with pytest.raises(RuntimeError, match="empty"):
        buf.sample_transitions(4)
    insert(buf, ref, src, 2)
    assert_matches(buf, ref)
    first = logical_slots(buf)[0]  # after clear, a step starts an episode only where the last one was done
    assert torch.equal(buf.episode_start[first], ref.steps[0]["start"])
    obs, _ = buf.sample_transitions(500, generator=torch.Generator().manual_seed(1))
    assert {(int(t), int(e)) for t, e in obs["id"].tolist()} == held_ids(ref)


def expected_sequence_mask(ref: ReferenceBuffer, t0: int, env: int, length: int, burn_in: int) -> torch.Tensor:
    """The mask the spec asks for, for the window starting at global step ``t0`` of ``env``."""
    times = [int(step["obs"]["id"][0, 0]) for step in ref.steps]
    starts = {int(step["obs"]["id"][0, 0]): bool(step["start"][env]) for step in ref.steps}
    newest = times[-1]
    mask = torch.zeros(length, dtype=torch.bool)
    for offset in range(length):
        t = t0 + offset
        if t > newest:  # beyond the newest held step
            break
        if offset > 0 and starts[t]:  # a new episode: this and every later step belong to another one
            break
        mask[offset] = starts[t0] or offset >= burn_in
    return mask


# 30 steps in 12 slots leave the oldest held step in slot 6, half-way round; 31 in slot 7 (neither 0 nor half-way).
@pytest.mark.parametrize("steps, done_prob", [(7, 0.25), (30, 0.25), (31, 0.25), (30, 0.0), (30, 0.6)])
def test_sample_sequences_masks_other_episodes_burn_in_and_unwritten_steps(steps, done_prob):
    length, burn_in = 6, 2
    buf, ref, _ = filled_buffer(seed=3, steps=steps, done_prob=done_prob)
    obs, labels, mask = buf.sample_sequences(400, length, burn_in, generator=torch.Generator().manual_seed(2))
    assert obs["id"].shape == (length, 400, 2) and labels.shape == (length, 400, NUM_ACTIONS)
    assert mask.shape == (length, 400) and mask.dtype == torch.bool
    held = held_ids(ref)
    by_id = {(int(t), int(e)): step["teacher"][int(e)] for step in ref.steps for t, e in step["obs"]["id"].tolist()}
    saw_start_window = saw_mid_window = False
    for b in range(400):
        t0, env = (int(x) for x in obs["id"][0, b].tolist())
        assert (t0, env) in held  # windows start at a held step
        expected = expected_sequence_mask(ref, t0, env, length, burn_in)
        assert torch.equal(mask[:, b], expected), (t0, env, mask[:, b], expected)
        for offset in range(length):
            if mask[offset, b]:  # every trained step is the right step of the same env, with its label
                assert (int(obs["id"][offset, b, 0]), int(obs["id"][offset, b, 1])) == (t0 + offset, env)
                assert torch.equal(labels[offset, b], by_id[(t0 + offset, env)])
        starts_episode = bool(expected[0])
        saw_start_window |= starts_episode
        saw_mid_window |= not starts_episode and bool(expected[burn_in:].any())
    assert mask.any()
    if done_prob == 0.25:  # both kinds of windows were checked
        assert saw_start_window and saw_mid_window


def test_sample_sequences_defaults_to_no_burn_in():
    """Without ``burn_in`` every window's first step is trained, mid-episode windows included."""
    buf, _, _ = filled_buffer(steps=10, done_prob=0.0)  # one episode per env: nearly every window starts mid-way
    _, _, mask = buf.sample_sequences(64, 3, generator=torch.Generator().manual_seed(0))
    assert mask[0].all()


def test_a_given_generator_makes_the_samples_reproducible():
    """The same seeded generator gives the same samples, whatever torch's global random state."""
    buf, _, _ = filled_buffer(steps=10)
    draws = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        obs, _ = buf.sample_transitions(16, generator=torch.Generator().manual_seed(5))
        seq, _, _ = buf.sample_sequences(16, 3, 1, generator=torch.Generator().manual_seed(5))
        draws.append((obs["id"], seq["id"]))
    assert torch.equal(draws[0][0], draws[1][0]) and torch.equal(draws[0][1], draws[1][1])


def test_sample_sequences_argument_errors():
    buf, _, _ = filled_buffer(steps=5)
    _, _, mask = buf.sample_sequences(4, length=1)  # the shortest window: one trained step
    assert mask.shape == (1, 4) and mask.all()
    with pytest.raises(ValueError, match="burn_in"):
        buf.sample_sequences(4, length=4, burn_in=4)
    with pytest.raises(ValueError, match="burn_in"):
        buf.sample_sequences(4, length=4, burn_in=6)
    with pytest.raises(ValueError, match="length"):
        buf.sample_sequences(4, length=0)
    with pytest.raises(RuntimeError, match="empty"):
        new_buffer().sample_sequences(4, length=4, burn_in=1)


# ------------------------------------------------------------------------------------------ construction errors
def test_capacity_below_one_env_step_is_rejected():
    with pytest.raises(ValueError, match="at least one env step"):
        AggregatedBuffer(3, 4, OBS_DIMS, NUM_ACTIONS)
    with pytest.raises(ValueError, match="positive"):
        AggregatedBuffer(16, 4, {"policy": 0}, NUM_ACTIONS)
    AggregatedBuffer(4, 4, OBS_DIMS, NUM_ACTIONS)  # exactly one env step is fine


# ----------------------------------------------------------------------------------------------- persistence
def test_state_dict_round_trip_restores_contents_and_continues_identically():
    buf, ref, src = filled_buffer(steps=17)
    state = buf.state_dict()
    restored = new_buffer()
    restored.load_state_dict(state)
    assert restored.total_steps == buf.total_steps
    assert_matches(restored, ref)
    # A resumed run starts from freshly reset envs: its first inserted step starts an episode in every env, and
    # everything held before is unchanged.
    data = src.make(3)
    restored.extend(*data)
    ref.extend(*data)
    ref.steps[-3]["start"] = torch.ones_like(ref.steps[-3]["start"])
    assert_matches(restored, ref)
    assert restored.episode_start[logical_slots(restored)[-3]].all()
    held = logical_slots(restored)[:-3]
    for name in ("teacher_actions", "student_actions", "teacher_driven", "episode_start"):
        assert torch.equal(getattr(restored, name)[held], getattr(buf, name)[held])


def test_state_dict_survives_torch_save_with_weights_only(tmp_path):
    buf, ref, _ = filled_buffer(steps=9)
    torch.save({"buffer": buf.state_dict()}, tmp_path / "b.pt")
    loaded = torch.load(tmp_path / "b.pt", weights_only=True)
    restored = new_buffer()
    restored.load_state_dict(loaded["buffer"])
    assert_matches(restored, ref)


def test_load_state_dict_rejects_a_buffer_of_another_shape():
    buf, _, _ = filled_buffer(steps=3)
    with pytest.raises(ValueError, match="do not match"):
        new_buffer(capacity=80).load_state_dict(buf.state_dict())
    with pytest.raises(ValueError, match="do not match"):
        AggregatedBuffer(CAPACITY, NUM_ENVS, {"id": 2, "policy": 5}, NUM_ACTIONS).load_state_dict(buf.state_dict())


def test_memory_bytes_is_the_size_of_every_stored_tensor():
    buf = new_buffer()
    per_transition = (sum(OBS_DIMS.values()) + 2 * NUM_ACTIONS) * 4 + 2 * 1  # float32 obs/actions, 2 bool flags
    assert buf.memory_bytes == NUM_SLOTS * NUM_ENVS * per_transition
    tensors = [*buf.obs.values(), buf.teacher_actions, buf.student_actions, buf.teacher_driven, buf.episode_start]
    assert buf.memory_bytes == sum(t.numel() * t.element_size() for t in tensors)
