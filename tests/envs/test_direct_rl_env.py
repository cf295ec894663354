"""``DirectRLEnv`` and ``RslRlVecEnvWrapper``: the step/reset/done contract, exercised through the ``point_ctrl`` task."""

from __future__ import annotations

import pytest
import torch
from tensordict import TensorDict

from foundation.envs import DirectRLEnv, RslRlVecEnvWrapper
from tests.conftest import make_point_ctrl_env
from tests.tasks.test_point_ctrl_randomization import NEW_FACTORS_OFF

N = 16
#: Crashes impossible: the height band is wide.
NO_CRASH = dict(min_height_m=-100.0, max_height_m=100.0)


def full(value: float, n: int = N) -> torch.Tensor:
    return torch.full((n, 4), value)


# -------------------------------------------------------------------------------------------- shapes and types
def test_observations_rewards_and_done_flags_have_the_documented_shapes_and_types():
    env = make_point_ctrl_env(N)
    assert isinstance(env, DirectRLEnv)
    assert env.observation_sizes() == {"policy": 25, "teacher": 41}
    assert env.num_actions == 4
    obs, _ = env.reset()
    for _ in range(3):
        obs, reward, terminated, time_outs, extras = env.step(torch.rand(N, 4) * 2 - 1)
    assert set(obs) == {"policy", "teacher"}
    for group, size in (("policy", 25), ("teacher", 41)):
        assert obs[group].shape == (N, size)
        assert obs[group].dtype == torch.float32
        assert torch.isfinite(obs[group]).all()
    assert reward.shape == (N,) and reward.dtype == torch.float32 and torch.isfinite(reward).all()
    assert terminated.shape == (N,) and terminated.dtype == torch.bool
    assert time_outs.shape == (N,) and time_outs.dtype == torch.bool
    assert isinstance(extras, dict) and "log" in extras
    assert env.single_observation_space["policy"].shape == (25,)
    assert env.single_observation_space["teacher"].shape == (41,)
    assert env.single_action_space.shape == (4,)


def test_a_fresh_env_has_its_documented_buffers_spaces_and_first_observations():
    """Before any step: int64 episode counters and bool done flags at zero, empty extras, actions bounded to
    [-1, 1], unbounded observations. (A task without its own reset in ``__init__``: ``test_substep_fusion.py``.)"""
    env = make_point_ctrl_env(N)
    assert str(env.device) == env.cfg.sim.device == "cpu"
    assert env.episode_length_buf.dtype == torch.long and not env.episode_length_buf.any()
    for flags in (env.reset_terminated, env.reset_time_outs, env.reset_buf):
        assert flags.shape == (N,) and flags.dtype == torch.bool and not flags.any()
    assert env.extras == {"log": {}}
    assert (env.single_action_space.low == -1).all() and (env.single_action_space.high == 1).all()
    for space in env.single_observation_space.values():
        assert (space.low == -float("inf")).all() and (space.high == float("inf")).all()
    obs = env.get_observations()
    assert {k: v.shape for k, v in obs.items()} == {k: (N, d) for k, d in env.observation_sizes().items()}


def test_unseeded_envs_draw_their_own_seeds():
    a, b = make_point_ctrl_env(N, seed=None), make_point_ctrl_env(N, seed=None)
    assert not torch.equal(a.reset()[0]["policy"], b.reset()[0]["policy"])


def test_the_backend_gets_the_cfgs_physics_settings(monkeypatch):
    """scene and sim settings (spacing, MuJoCo Warp's contact and constraint sizes, threads) reach the backend."""
    import foundation.envs.direct_rl_env as module

    seen = []
    real = module.make_backend

    def recording(*args):
        seen.append(args[1:])
        return real(*args)

    monkeypatch.setattr(module, "make_backend", recording)
    make_point_ctrl_env(4, scene__env_spacing=2.5, sim__nconmax=7, sim__njmax=9, sim__nthread=3)
    assert seen == [(4, "auto", "cpu", 2.5, 7, 9, 3)]


def test_step_rejects_actions_of_the_wrong_shape():
    env = make_point_ctrl_env(N)
    with pytest.raises(ValueError, match=r"Expected actions of shape \(16, 4\), got \(16, 3\)"):
        env.step(torch.zeros(N, 3))
    with pytest.raises(ValueError, match=r"Expected actions of shape \(16, 4\), got \(4,\)"):
        env.step(torch.zeros(4))
    with pytest.raises(ValueError, match=r"got \(8, 4\)"):
        env.step(torch.zeros(8, 4))


def test_an_invalid_config_is_rejected_naming_every_bad_field():
    with pytest.raises(ValueError) as err:
        make_point_ctrl_env(0, decimation=0)
    assert "scene.num_envs" in str(err.value) and "decimation" in str(err.value)


def test_the_same_seed_gives_the_same_rollout():
    envs = [make_point_ctrl_env(N, seed=3), make_point_ctrl_env(N, seed=3), make_point_ctrl_env(N, seed=4)]
    obs = [e.get_observations() for e in envs]
    assert torch.equal(obs[0]["teacher"], obs[1]["teacher"]) and torch.equal(obs[0]["policy"], obs[1]["policy"])
    assert not torch.equal(obs[0]["teacher"], obs[2]["teacher"])
    actions = torch.rand(20, N, 4, generator=torch.Generator().manual_seed(0)) * 2 - 1
    for a in actions:
        out0, out1 = envs[0].step(a), envs[1].step(a)
        assert torch.equal(out0[0]["policy"], out1[0]["policy"])
        assert torch.equal(out0[1], out1[1])


# -------------------------------------------------------------------------------------------------- resets
def test_reset_idx_resets_only_the_given_envs():
    env = make_point_ctrl_env(N, **NO_CRASH)
    for _ in range(5):
        env.step(full(0.2))
    qpos, qvel = env.sim.qpos.clone(), env.sim.qvel.clone()
    assert (env.episode_length_buf == 5).all()

    ids = torch.tensor([2, 5, 11])
    others = torch.tensor([i for i in range(N) if i not in ids.tolist()])
    env._reset_idx(ids)
    env.sim.kinematics()

    assert (env.episode_length_buf[ids] == 0).all()
    assert (env.episode_length_buf[others] == 5).all()
    assert torch.equal(env.sim.qpos[others], qpos[others]) and torch.equal(env.sim.qvel[others], qvel[others])
    assert (env.sim.qpos[ids] != qpos[ids]).any(dim=1).all()  # every reset env got a new state
    # ... the configured initial state: at the start position, within the velocity bounds.
    cfg = env.cfg.init
    start = torch.tensor(cfg.pos_m, dtype=torch.float64) + env.sim.env_origins[ids].double()
    torch.testing.assert_close(env.sim.qpos[ids, :3], start, atol=1e-6, rtol=0)
    assert (env.sim.qvel[ids, :3].abs() <= cfg.max_lin_vel_mps + 1e-6).all()
    assert (env.sim.qvel[ids, 3:6].abs() <= cfg.max_ang_vel_radps + 1e-6).all()


def test_every_env_times_out_exactly_at_max_episode_length():
    env = make_point_ctrl_env(N, episode_length_s=0.2, **NO_CRASH)
    assert env.step_dt == pytest.approx(0.02)
    assert env.max_episode_length == 10
    for step in range(1, 11):
        obs, _, terminated, time_outs, extras = env.step(torch.rand(N, 4) * 2 - 1)
        assert not terminated.any(), f"step {step}"
        if step < 10:
            assert not time_outs.any(), f"step {step}"
            assert (env.episode_length_buf == step).all()
    assert time_outs.all() and not terminated.any()
    assert (env.episode_length_buf == 0).all()  # new episodes started
    assert "episode_outcomes" in extras
    obs, _, terminated, time_outs, _ = env.step(torch.zeros(N, 4))
    assert not time_outs.any() and (env.episode_length_buf == 1).all()


def test_wrapper_reports_time_outs_in_extras_and_dones_as_long():
    wrapped = RslRlVecEnvWrapper(make_point_ctrl_env(N, episode_length_s=0.2, **NO_CRASH))
    assert wrapped.max_episode_length == 10 and wrapped.num_envs == N and wrapped.num_actions == 4
    obs = wrapped.get_observations()
    assert isinstance(obs, TensorDict) and obs.batch_size == torch.Size([N]) and set(obs.keys()) == {"policy",
                                                                                                     "teacher"}
    for step in range(1, 11):
        obs, rew, dones, extras = wrapped.step(torch.zeros(N, 4))
        assert dones.dtype == torch.long and rew.shape == (N,)
        assert torch.equal(extras["time_outs"], torch.full((N,), step == 10))
        assert torch.equal(dones, torch.full((N,), int(step == 10)))
    # episode_length_buf is the env's own buffer, assignable (rsl-rl randomises initial episode lengths with it).
    wrapped.episode_length_buf = torch.full((N,), 7)
    assert (wrapped.unwrapped.episode_length_buf == 7).all()
    _, _, dones, extras = wrapped.step(torch.zeros(N, 4))
    assert not dones.any()
    _, _, dones, extras = wrapped.step(torch.zeros(N, 4))
    _, _, dones, extras = wrapped.step(torch.zeros(N, 4))
    assert dones.all() and extras["time_outs"].all()


def test_wrapper_clips_actions():
    env = make_point_ctrl_env(N)
    wrapped = RslRlVecEnvWrapper(env, clip_actions=0.5)
    wrapped.step(torch.full((N, 4), 3.0))
    assert torch.allclose(env.get_observations()["teacher"][:, 18:22], torch.full((N, 4), 0.5))


def actions_received(env: DirectRLEnv) -> list[torch.Tensor]:
    """Records the actions that reach the task's ``_pre_physics_step``."""
    seen = []
    pre = env._pre_physics_step

    def spy(actions):
        seen.append(actions.clone())
        pre(actions)

    env._pre_physics_step = spy
    return seen


def test_wrapper_clips_actions_to_one_by_default_on_both_sides():
    env = make_point_ctrl_env(N)
    seen = actions_received(env)
    RslRlVecEnvWrapper(env).step(torch.tensor([-3.0, -0.5, 0.5, 3.0]).repeat(N, 1))
    torch.testing.assert_close(seen[0], torch.tensor([-1.0, -0.5, 0.5, 1.0]).repeat(N, 1))


def test_wrapper_passes_the_envs_attributes_seed_and_observations_through():
    env = make_point_ctrl_env(N, **NO_CRASH)
    wrapped = RslRlVecEnvWrapper(env)
    assert wrapped.device == env.device and wrapped.cfg is env.cfg and wrapped.unwrapped is env

    def assert_is_the_envs(obs):
        assert isinstance(obs, TensorDict) and obs.batch_size == torch.Size([N])
        assert set(obs.keys()) == set(env.get_observations())
        for group, value in env.get_observations().items():
            assert torch.equal(obs[group], value)

    first, _ = wrapped.reset(seed=3)
    assert_is_the_envs(first)
    first = first.clone()
    assert_is_the_envs(wrapped.step(torch.zeros(N, 4))[0])
    again, _ = wrapped.reset(seed=3)
    other, _ = wrapped.reset(seed=4)
    assert torch.equal(again["policy"], first["policy"])  # the seed reaches the env: the same random starts
    assert not torch.equal(other["policy"], first["policy"])


def test_wrapper_zeroes_a_nonfinite_observation_and_ends_only_that_env():
    """Envs 1-3 get a NaN, +inf and -inf observation entry: those entries become 0, those envs are done and
    terminated (never a time-out, though env 2 also reached the time limit); env 4's time-out and the other envs'
    observations are untouched."""
    env = make_point_ctrl_env(N, episode_length_s=0.2, **NO_CRASH)
    wrapped = RslRlVecEnvWrapper(env)
    wrapped.reset(seed=0)
    observe = env._get_observations
    clean = {}

    def broken():
        obs = {k: v.clone() for k, v in observe().items()}
        clean.update({k: v.clone() for k, v in obs.items()})
        obs["policy"][1, 0], obs["policy"][2, 5], obs["policy"][3, 7] = float("nan"), float("inf"), float("-inf")
        return obs

    env._get_observations = broken
    wrapped.episode_length_buf[[2, 4]] = env.max_episode_length - 1
    obs, reward, dones, extras = wrapped.step(torch.zeros(N, 4))
    expected = clean["policy"].clone()
    expected[1, 0] = expected[2, 5] = expected[3, 7] = 0.0
    assert torch.equal(obs["policy"], expected) and torch.equal(obs["teacher"], clean["teacher"])
    assert torch.equal(dones, (torch.arange(N) < 5).long() * (torch.arange(N) > 0).long())
    assert extras["time_outs"].nonzero().flatten().tolist() == [4]
    assert torch.isfinite(reward).all()
    assert extras["log"]["Episode_Termination/nonfinite_output"] == 3.0


def test_a_crash_terminates_the_episode():
    """Motors off: every drone falls below min_height_m; that step reports terminated (not a time-out)."""
    env = RslRlVecEnvWrapper(make_point_ctrl_env(N, min_height_m=0.9))
    crashed_at = {}
    for step in range(1, 30):
        _, _, dones, extras = env.step(full(-1.0))
        outcomes = extras.get("episode_outcomes")
        if outcomes is None:
            continue
        ids = outcomes["env_ids"]
        assert outcomes["crash"].all(), "with the motors off, every ended episode is a crash"
        assert not extras["time_outs"][ids].any()
        for i in ids.tolist():
            crashed_at.setdefault(i, (step, bool(env.unwrapped.reset_terminated[i]), int(dones[i])))
        if len(crashed_at) == N:
            break
    assert len(crashed_at) == N, "some drone did not fall 10 cm in 30 steps with the motors off"
    not_terminated = sorted(i for i, (_, term, _) in crashed_at.items() if not term)
    not_done = sorted(i for i, (_, _, done) in crashed_at.items() if not done)
    assert not not_terminated, f"envs {not_terminated} crashed but step() returned terminated=False"
    assert not not_done, f"envs {not_done} crashed but the wrapper returned dones=0"


def test_nonfinite_physics_terminates_only_that_env_and_never_raises(tmp_cwd):
    env = make_point_ctrl_env(N)
    env.step(torch.zeros(N, 4))
    lengths = env.episode_length_buf.clone()
    env.sim.qvel[0] = float("nan")
    obs, reward, terminated, time_outs, extras = env.step(torch.zeros(N, 4))
    assert torch.isfinite(env.sim.qpos).all() and torch.isfinite(env.sim.qvel).all()
    for group in obs.values():
        assert torch.isfinite(group).all()
    assert extras["log"]["Episode_Termination/nonfinite_physics"] == 1
    assert reward[0] == 0
    assert env.episode_length_buf[0] == 0  # env 0 started a new episode
    assert torch.equal(env.episode_length_buf[1:], lengths[1:] + 1)  # the others went on
    assert not time_outs[0]
    assert not terminated[1:].any()
    assert terminated[0], "the env whose physics became non-finite must be reported as terminated"


def test_a_runaway_velocity_alone_and_a_runaway_position_alone_are_each_caught():
    """Env 2 flies at 1500 m/s (beyond max_abs_qvel, still within max_abs_qpos after one step), env 5 sits 1500 m
    away at rest (beyond max_abs_qpos only), in the same step: both, and only they, are reset and terminated."""
    env = make_point_ctrl_env(N, **NO_CRASH)
    assert env.cfg.max_abs_qvel == env.cfg.max_abs_qpos == 1000.0
    env.step(torch.zeros(N, 4))
    lengths = env.episode_length_buf.clone()
    env.sim.qvel[2, 0] = 1500.0
    env.sim.qpos[5, 0] += 1500.0
    _, reward, terminated, _, extras = env.step(torch.zeros(N, 4))
    assert extras["log"]["Episode_Termination/runaway_state"] == 2.0
    assert terminated.nonzero().flatten().tolist() == [2, 5] and (reward[[2, 5]] == 0).all()
    others = [i for i in range(N) if i not in (2, 5)]
    assert (env.episode_length_buf[[2, 5]] == 0).all()
    assert torch.equal(env.episode_length_buf[others], lengths[others] + 1)


def test_envs_far_from_the_world_origin_are_not_runaways():
    """The position bound is relative to each env's origin: on a 4 x 4 grid 4 m apart with a 5 m bound, the outer
    envs' origins are beyond the bound, their drones are not."""
    env = make_point_ctrl_env(N, scene__env_spacing=4.0, max_abs_qpos=5.0, **NO_CRASH)
    assert env.sim.env_origins.abs().max() > 5.0
    for _ in range(3):
        _, _, terminated, _, extras = env.step(torch.zeros(N, 4))
        assert not terminated.any()
        assert extras["log"].get("Episode_Termination/runaway_state", 0.0) == 0.0


def test_the_episode_a_blow_up_ends_is_reported_with_finite_outcomes():
    """A non-finite state is put back to a finite one before the task computes dones, rewards and the ended
    episode's outcomes: nothing NaN reaches the logs or an evaluation."""
    env = make_point_ctrl_env(N, **NO_CRASH)
    env.step(torch.zeros(N, 4))
    env.sim.qvel[0] = float("nan")
    _, _, _, _, extras = env.step(torch.zeros(N, 4))
    outcomes = extras["episode_outcomes"]
    assert outcomes["env_ids"].tolist() == [0]
    assert torch.isfinite(outcomes["final_distance"]).all()
    assert all(torch.isfinite(torch.as_tensor(v)).all() for v in extras["log"].values())


# ------------------------------------------------------------------------------------------------ logging
REWARD_TERMS = ("distance_coarse", "distance_fine", "lin_vel", "ang_vel", "action_rate", "crash")


def test_ended_episodes_are_logged_with_consistent_outcomes():
    """Envs 0-7 crash (motors off, min height 0.9 m), envs 8-15 time out (full throttle) after 0.3 s."""
    # Without latency, slow rotors or payload (issue 8's factors), full throttle climbs from every tilted start.
    env = make_point_ctrl_env(N, episode_length_s=0.3, min_height_m=0.9, max_height_m=100.0, **NEW_FACTORS_OFF)
    actions = torch.cat([full(-1.0, 8), full(1.0, 8)])
    logged_steps = 0
    for step in range(1, env.max_episode_length + 1):
        _, _, _, time_outs, extras = env.step(actions)
        ended = env.reset_buf.nonzero().squeeze(-1)
        log = extras["log"]
        if len(ended) == 0:
            assert "episode_outcomes" not in extras and not any(k.startswith("Episode_") for k in log)
            continue
        logged_steps += 1
        outcomes = extras["episode_outcomes"]
        k = len(ended)
        assert torch.equal(outcomes["env_ids"], ended)
        assert outcomes["success"].shape == (k,) and outcomes["success"].dtype == torch.bool
        assert outcomes["crash"].shape == (k,) and outcomes["crash"].dtype == torch.bool
        assert outcomes["final_distance"].shape == (k,) and outcomes["final_distance"].is_floating_point()
        assert (outcomes["final_distance"] >= 0).all()
        assert torch.equal(outcomes["crash"], ended < 8)
        assert not (outcomes["success"] & outcomes["crash"]).any()
        assert {f"Episode_Reward/{t}" for t in REWARD_TERMS} <= set(log)
        assert log["Episode_Metric/crash"] == pytest.approx(outcomes["crash"].float().mean().item())
        assert log["Episode_Metric/success"] == pytest.approx(outcomes["success"].float().mean().item())
        assert log["Episode_Termination/nonfinite_physics"] == 0
        if outcomes["crash"].all():
            # The one-off crash reward, averaged per second of episode as Isaac Lab logs it.
            assert log["Episode_Reward/crash"] == pytest.approx(env.cfg.rewards.crash / env.cfg.episode_length_s)
            assert "Episode_Metric/final_distance" not in log
        if step == env.max_episode_length:
            assert time_outs[8:].all()
            assert "Episode_Metric/final_distance" in log
    assert logged_steps >= 2  # crashes, then the time-outs


def test_an_external_reset_aborts_episodes_without_reporting_them():
    env = make_point_ctrl_env(N, **NO_CRASH)
    for _ in range(5):
        env.step(full(0.0))
    obs, extras = env.reset()
    assert "episode_outcomes" not in extras and not any(k.startswith("Episode_") for k in extras["log"])
    assert (env.episode_length_buf == 0).all() and obs["policy"].shape == (N, 25)
