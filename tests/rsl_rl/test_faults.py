"""Faults that lose nothing (issue 7, items 3, 4 and 9): blow-ups reset only their env and never reach the learner,
failed checkpoint writes say why and keep earlier files, SIGKILL during a save leaves only loadable checkpoints and a
resumable run, and nothing private is stored or sent by default."""

from __future__ import annotations

import errno
import glob
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import torch

from foundation.envs import RslRlVecEnvWrapper
from foundation.rsl_rl import checkpoints, cli
from foundation.rsl_rl.runner import FoundationOnPolicyRunner
from foundation.rsl_rl.runner_cfg import to_rsl_rl_dict
from foundation.rsl_rl.train import main
from foundation.tasks import make_env
from tests.conftest import TINY_RUN, make_point_ctrl_env, point_ctrl_cfg

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRAIN = os.path.join(REPO, "foundation", "rsl_rl", "train.py")
PPO = ["--task", "point_ctrl", "--num_envs", "16", *TINY_RUN, "agent.save_interval=1"]


# ----------------------------------------------------------------------------------------- blow-ups (item 3)
def test_a_finite_blow_up_resets_only_its_env_and_is_counted(tmp_cwd):
    env = make_point_ctrl_env(8, seed=0)
    env.reset()
    env.step(torch.zeros(8, 4))
    lengths = env.episode_length_buf.clone()
    env.sim.qvel[3, :3] = 1e30  # finite, absurd: a numerical blow-up
    _, reward, terminated, _, extras = env.step(torch.zeros(8, 4))
    assert torch.isfinite(reward).all() and reward[3] == 0.0
    assert terminated[3] and env.episode_length_buf[3] == 0
    others = [i for i in range(8) if i != 3]
    assert (env.episode_length_buf[others] == lengths[others] + 1).all()  # the other envs go on
    assert extras["log"]["Episode_Termination/runaway_state"] == 1.0
    assert env.sim.qvel.abs().max() < 1e3


def test_ppo_trains_on_through_a_blow_up(tmp_cwd):
    env_cfg, agent_cfg = point_ctrl_cfg(16, seed=0, episode_length_s=1.0)
    agent_cfg.num_steps_per_env = 8
    env = RslRlVecEnvWrapper(make_env("point_ctrl", env_cfg))
    runner = FoundationOnPolicyRunner(env, to_rsl_rl_dict(agent_cfg), device="cpu")
    env.unwrapped.sim.qvel[0, :3] = 1e30
    runner.learn(2)  # the failure: `normal expects all elements of std >= 0.0` in the next update
    assert all(torch.isfinite(p).all() for p in runner.alg.get_policy().parameters())


def test_a_non_finite_reward_or_observation_never_reaches_the_learner(tmp_cwd):
    env = make_point_ctrl_env(4, seed=0)
    wrapped = RslRlVecEnvWrapper(env)
    wrapped.reset()
    rewards = env._get_rewards

    def broken_rewards():
        r = rewards()
        r[1] = float("nan")
        r[2] = float("-inf")
        return r

    env._get_rewards = broken_rewards
    obs, reward, dones, extras = wrapped.step(torch.zeros(4, 4))
    assert torch.isfinite(reward).all() and dones[1] and dones[2]
    assert all(torch.isfinite(v).all() for v in obs.values())
    assert extras["log"]["Episode_Termination/nonfinite_output"] == 2.0


# --------------------------------------------------------------------------------- failed writes (item 4)
@pytest.mark.parametrize("code, reason", [(errno.ENOSPC, "No space left on device"),
                                          (errno.EACCES, "Permission denied")])
def test_a_failed_checkpoint_write_says_why_and_keeps_earlier_checkpoints(log_dir, monkeypatch, code, reason):
    replace = os.replace
    calls = []

    def failing_replace(src, dst):
        if str(src).endswith(".pt.tmp"):
            calls.append(dst)
            if len(calls) >= 2:  # the second checkpoint of the run
                raise OSError(code, os.strerror(code))
        return replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(SystemExit) as err:
        main([*PPO, "--max_iterations", "3"])
    message = str(err.value.code)
    assert reason in message and "model_1.pt" in message and "\n" not in message
    run = os.path.dirname(calls[0])
    assert not glob.glob(os.path.join(run, "*.tmp"))  # the temporary file was removed
    assert torch.load(os.path.join(run, "model_0.pt"), weights_only=True)["iter"] == 0


def test_the_os_error_of_a_real_write_is_reported(tmp_path, monkeypatch):
    def full_disk(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    (tmp_path / "model_0.pt").write_bytes(b"earlier")
    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(checkpoints.CheckpointWriteError, match="No space left on device"):
        checkpoints.atomic_torch_save({"x": torch.zeros(3)}, str(tmp_path / "model_0.pt"))
    assert (tmp_path / "model_0.pt").read_bytes() == b"earlier" and not list(tmp_path.glob("*.tmp"))


def test_stale_temporaries_are_cleaned_when_a_run_starts(log_dir):
    run = main([*PPO, "--max_iterations", "1"])["log_dir"]
    stale = os.path.join(run, "model_7.pt.tmp")
    open(stale, "wb").write(b"half a checkpoint")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    fresh = os.path.join(run, "model_8.pt.tmp")  # may belong to a save in progress of another run
    open(fresh, "wb").write(b"being written")
    main([*PPO, "--max_iterations", "1"])
    assert not os.path.exists(stale) and os.path.exists(fresh)


# ------------------------------------------------------------------------------------------------ SIGKILL
def _train_and_kill(log_root: str, extra: list[str], timeout_s: float = 60.0) -> tuple[str, str]:
    """Start a real train.py and SIGKILL it at the first sight of a checkpoint file being written after the first
    one (a ``*.tmp``, or a ``*.pt`` that was not there at the previous poll). Returns ``(run folder, what was seen)``.
    """
    env = {**os.environ, "FOUNDATION_LOG_ROOT": log_root, "PYTHONPATH": REPO}
    # Wide networks: a checkpoint of ~26 MB (weights + Adam state) takes long enough to write to be caught.
    argv = [sys.executable, TRAIN, *PPO, "--max_iterations", "1000", "agent.actor.hidden_dims=[1024,1024]",
            "agent.critic.hidden_dims=[1024,1024]", *extra]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seen, known, deadline = None, set(), time.time() + timeout_s
    try:
        while seen is None and time.time() < deadline and proc.poll() is None:
            files = set(glob.glob(os.path.join(log_root, "point_ctrl", "*", "*.pt*")))
            done = {f for f in files if f.endswith(".pt")}
            new = [f for f in files - known if f.endswith(".tmp") or f in done]
            if new and any(f.endswith(".pt") for f in known | done - set(new)):
                seen = new[0]
                break
            known |= done
            time.sleep(0.001)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert seen is not None, "no checkpoint write was caught"
    return os.path.dirname(seen), seen


def test_sigkill_while_a_checkpoint_is_written_leaves_only_loadable_checkpoints(tmp_path):
    log_root = str(tmp_path / "logs")
    run, seen = _train_and_kill(log_root, [])
    finals = sorted(glob.glob(os.path.join(run, "*.pt")), key=os.path.getmtime)
    assert finals, "the earlier checkpoint is gone"
    for path in finals:  # every checkpoint under its final name is complete
        saved = torch.load(path, weights_only=True)
        assert "actor_state_dict" in saved and "optimizer_state_dict" in saved, path
    assert os.path.isfile(os.path.join(run, checkpoints.RUN_MARKER))

    # The run resumes in its folder from the newest complete checkpoint; the temporary file of the kill is removed.
    last = max(torch.load(p, weights_only=True)["iter"] for p in glob.glob(os.path.join(run, "model_*.pt")))
    env = {**os.environ, "FOUNDATION_LOG_ROOT": log_root, "PYTHONPATH": REPO}
    proc = subprocess.run([sys.executable, TRAIN, "--task", "point_ctrl", "--resume", "--max_iterations",
                           str(last + 2), "agent.eval.final_num_episodes=16"], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not glob.glob(os.path.join(run, "*.tmp"))
    assert torch.load(os.path.join(run, f"model_{last + 1}.pt"), weights_only=True)["iter"] == last + 1


def test_sigkill_before_the_first_checkpoint_leaves_no_run_that_blocks_a_lookup(tmp_path, teacher_checkpoint,
                                                                                 monkeypatch):
    log_root = str(tmp_path / "logs")
    env = {**os.environ, "FOUNDATION_LOG_ROOT": log_root, "PYTHONPATH": REPO, "PYTHONUNBUFFERED": "1"}
    good = os.path.join(log_root, "point_ctrl", "2000-01-01_00-00-00")
    os.makedirs(good)
    for name in ("model_0.pt", checkpoints.RUN_MARKER):  # a complete earlier run
        src = teacher_checkpoint.parent / name
        open(os.path.join(good, name), "wb").write(src.read_bytes())
    proc = subprocess.Popen([sys.executable, TRAIN, *PPO, "--max_iterations", "1000"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in proc.stdout:  # killed as soon as its run folder exists, before its first checkpoint
        if line.startswith("[info] Logging to"):
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    monkeypatch.setenv("FOUNDATION_LOG_ROOT", log_root)
    found = cli.find_checkpoint("point_ctrl", None, None)
    assert found == os.path.join(good, "model_0.pt")


# ----------------------------------------------------------------------------------------------- privacy (item 9)
def test_the_git_diff_is_stored_only_on_request_and_never_uploaded(log_dir):
    run = main([*PPO, "--max_iterations", "1"])["log_dir"]
    assert not os.path.exists(os.path.join(run, "git"))
    run = main([*PPO, "--max_iterations", "1", "agent.log_git_diff=true"])["log_dir"]
    assert glob.glob(os.path.join(run, "git", "*.diff"))


def test_wandb_with_a_key_but_no_network_fails_fast_before_the_run_folder(log_dir, monkeypatch):
    """A fake key, the real server: this machine has no network (the server is unreachable), and where there is
    one the key is refused; either way one line, quickly, and no run folder left."""
    monkeypatch.setenv("WANDB_API_KEY", "0" * 40)
    monkeypatch.setenv("WANDB_INIT_TIMEOUT", "10")
    for name in ("WANDB_MODE", "WANDB_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    start = time.time()
    with pytest.raises(SystemExit) as err:
        main([*PPO, "--max_iterations", "1", "--logger", "wandb"])
    assert time.time() - start < 15
    message = str(err.value.code)
    assert message.startswith("error:") and "wandb" in message.lower() and "WANDB_MODE=offline" in message
    assert "\n" not in message and "0" * 40 not in message
    assert not glob.glob(str(log_dir / "logs" / "rsl_rl" / "point_ctrl" / "*"))


def test_wandb_that_fails_to_start_leaves_no_run_folder(log_dir, monkeypatch):
    """The server answers (a local socket that refuses every request: HTTP 401) but wandb cannot start a run: one
    line, no traceback, no run folder."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def refuse_everything():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn = server.accept()[0]
                conn.settimeout(1.0)
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                conn.close()
            except OSError:
                pass

    thread = threading.Thread(target=refuse_everything, daemon=True)
    thread.start()
    monkeypatch.setenv("WANDB_API_KEY", "0" * 40)
    monkeypatch.setenv("WANDB_INIT_TIMEOUT", "3")
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{server.getsockname()[1]}")
    monkeypatch.delenv("WANDB_MODE", raising=False)
    try:
        with pytest.raises(SystemExit) as err:
            main([*PPO, "--max_iterations", "1", "--logger", "wandb"])
    finally:
        stop.set()
        thread.join()
        server.close()
    message = str(err.value.code)
    assert message.startswith("error:") and "logger could not start" in message, message
    assert "WANDB_MODE=offline" in message and "\n" not in message
    assert not glob.glob(str(log_dir / "logs" / "rsl_rl" / "point_ctrl" / "*"))
