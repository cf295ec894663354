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
    assert env.observation_sizes() == {"policy": 22, "teacher": 41}
    assert env.num_actions == 4
    obs, _ = env.reset()
    for _ in range(3):
        obs, reward, terminated, time_outs, extras = env.step(torch.rand(N, 4) * 2 - 1)
    assert set(obs) == {"policy", "teacher"}
    for group, size in (("policy", 22), ("teacher", 41)):
        assert obs[group].shape == (N, size)
        assert obs[group].dtype == torch.float32
        assert torch.isfinite(obs[group]).all()
    assert reward.shape == (N,) and reward.dtype == torch.float32 and torch.isfinite(reward).all()
    assert terminated.shape == (N,) and terminated.dtype == torch.bool
    assert time_outs.shape == (N,) and time_outs.dtype == torch.bool
    assert isinstance(extras, dict) and "log" in extras
    assert env.single_observation_space["policy"].shape == (22,)
    assert env.single_observation_space["teacher"].shape == (41,)
    assert env.single_action_space.shape == (4,)


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
    assert (env.episode_length_buf == 0).all() and obs["policy"].shape == (N, 22)
