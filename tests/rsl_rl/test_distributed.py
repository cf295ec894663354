"""Data-parallel training under torchrun (issue 9): two CPU processes (Gloo) end a PPO and a DAgger run with
bit-identical parameters, only rank 0 writes the run folder, a killed rank ends the job with a clear message and no
truncated checkpoint, and a resumed DAgger run restores each rank's buffer shard; bad launches fail with one line.

The runs are real ``torchrun`` jobs (``python -m torch.distributed.run --standalone``) of ``train.py`` at 16 envs per
process. Each process prints the SHA-256 of its models and optimiser after training (a check ``train.py`` makes on
every distributed run); the tests compare the two processes' digests with each other and with rank 0's checkpoint.
"""

from __future__ import annotations

import glob
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch

from foundation.rsl_rl import checkpoints, cli, distributed
from foundation.rsl_rl.train import main
from tests.conftest import TINY_RUN

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRAIN = os.path.join(REPO, "foundation", "rsl_rl", "train.py")
NUM_ENVS, STEPS = 16, 8
DIGEST = re.compile(r"\[distributed\] rank (\d+)/2: parameters sha256 ([0-9a-f]{64})")


def torchrun_cmd(*args: str) -> list[str]:
    """``train.py --distributed`` in two local processes."""
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone", TRAIN,
            "--distributed", "--num_envs", str(NUM_ENVS), *TINY_RUN, *args]


def job_env(workdir) -> dict:
    return {**os.environ, "PYTHONPATH": REPO, "FOUNDATION_LOG_ROOT": os.path.join(str(workdir), "logs"),
            "OMP_NUM_THREADS": "1"}


def torchrun(workdir, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(torchrun_cmd(*args), cwd=workdir, env=job_env(workdir), capture_output=True, text=True,
                          timeout=timeout)


def digests(output: str) -> dict[int, str]:
    """Rank -> parameter digest printed by each process."""
    return {int(rank): digest for rank, digest in DIGEST.findall(output)}


def checkpoint_digest(path: str) -> str:
    return distributed.state_digest(distributed.model_state(torch.load(path, weights_only=True)))


@pytest.fixture(scope="module")
def teacher_job(tmp_path_factory):
    """A 2-process PPO run of 2 iterations, evaluated every iteration (so rank 0 also writes ``best_model.pt``)."""
    workdir = tmp_path_factory.mktemp("dist_teacher")
    job = torchrun(workdir, "--task", "point_ctrl", "--max_iterations", "2", "agent.eval.interval=1")
    assert job.returncode == 0, job.stderr[-3000:]
    (run,) = glob.glob(os.path.join(str(workdir), "logs", "point_ctrl", "*"))
    return job, run


def test_teacher_ranks_end_bit_identical_and_only_rank_0_writes(teacher_job):
    job, run = teacher_job
    out = job.stdout
    found = digests(out)
    assert sorted(found) == [0, 1] and found[0] == found[1]
    assert checkpoint_digest(os.path.join(run, "model_1.pt")) == found[0]  # what rank 0 saved is what both hold
    # Each process has its own envs and seeds; one job's steps are both processes' steps.
    assert "rank 0 of 2 (local rank 0) on cpu (gloo): 16 envs, env seed 42, torch seed 42" in out
    assert "rank 1 of 2 (local rank 1) on cpu (gloo): 16 envs, env seed 43, torch seed 43" in out
    saved = torch.load(os.path.join(run, "model_1.pt"), weights_only=True)
    assert saved["train_state"]["tot_timesteps"] == 2 * NUM_ENVS * STEPS * 2 and saved["train_state"]["world_size"] == 2
    # One run folder (the only one in the log root), one writer: a second TensorBoard events file or folder would be
    # rank 1's.
    files = sorted(os.path.relpath(p, run) for p in glob.glob(os.path.join(run, "**", "*"), recursive=True))
    events = [f for f in files if f.startswith("events.out.tfevents")]
    assert len(events) == 1
    assert [f for f in files if f not in events] == ["best_model.pt", "model_0.pt", "model_1.pt", "params",
                                                     "params/agent.yaml", "params/env.yaml", "run.json"]
    assert out.count("[eval] iteration 0") == 1 and out.count("Logging to") == 1  # rank 0 alone evaluates and logs


def test_a_killed_rank_ends_the_job_and_a_resumed_dagger_run_restores_both_shards(teacher_job, tmp_path):
    teacher = os.path.join(teacher_job[1], "model_1.pt")
    distill = ["--task", "distillation", "--checkpoint", teacher, "agent.save_interval=1",
               "agent.algorithm.save_buffer=true", "agent.algorithm.max_buffer_size=1024",
               "agent.algorithm.phase1_iterations=1"]
    env = job_env(tmp_path)
    job = subprocess.Popen(torchrun_cmd(*distill, "--max_iterations", "500"), cwd=tmp_path, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        run = None
        deadline = time.time() + 90
        while time.time() < deadline and job.poll() is None:
            found = glob.glob(os.path.join(str(tmp_path), "logs", "point_ctrl_distillation", "*", "model_1.pt"))
            if found:
                run = os.path.dirname(found[0])
                break
            time.sleep(0.2)
        assert run is not None, "the job wrote no checkpoint"
        os.kill(rank_pid(job.pid, 1), signal.SIGKILL)
        output, _ = job.communicate(timeout=90)
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
    assert job.returncode != 0
    message = r"error: rank 0: (stopped by SIGTERM \(torchrun stops|lost contact with another process)"
    assert re.search(message, output), output[-3000:]
    # Every checkpoint is whole, and has both shards (rank 0 writes it only after both are written).
    checkpoints = [p for p in glob.glob(os.path.join(run, "model_*.pt")) if re.search(r"model_\d+\.pt$", p)]
    for path in checkpoints:
        assert torch.load(path, weights_only=True)["dagger_state"]["buffer_shards"] == 2
        for rank in (0, 1):
            assert torch.load(distributed.shard_path(path, rank), weights_only=True)["rank"] == rank
    newest = max(int(re.search(r"model_(\d+)\.pt", p).group(1)) for p in checkpoints)
    shards = [torch.load(distributed.shard_path(os.path.join(run, f"model_{newest}.pt"), r), weights_only=True)
              for r in (0, 1)]
    assert not torch.equal(shards[0]["buffer"]["obs"]["policy"], shards[1]["buffer"]["obs"]["policy"])  # own data

    resumed = torchrun(tmp_path, "--task", "distillation", "--resume", "--max_iterations", str(newest + 3))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    for rank, shard in enumerate(shards):
        held = min(shard["buffer"]["total_steps"], 1024 // NUM_ENVS) * NUM_ENVS
        assert f"[DAgger] rank {rank}: Loaded a distillation checkpoint at iteration {newest + 1}" in resumed.stdout
        assert re.search(rf"\[DAgger\] rank {rank}: .* buffer {held}/1024 transitions restored", resumed.stdout)
    found = digests(resumed.stdout)
    assert sorted(found) == [0, 1] and found[0] == found[1]
    assert checkpoint_digest(os.path.join(run, f"model_{newest + 2}.pt")) == found[0]


def rank_pid(launcher_pid: int, rank: int) -> int:
    """Pid of the worker of ``rank`` among the launcher's children (read from their ``RANK`` variable)."""
    with open(f"/proc/{launcher_pid}/task/{launcher_pid}/children") as f:
        children = [int(p) for p in f.read().split()]
    for pid in children:
        with open(f"/proc/{pid}/environ", "rb") as f:
            if f"RANK={rank}".encode() in f.read().split(b"\0"):
                return pid
    raise AssertionError(f"no worker of rank {rank} among {children}")


# ------------------------------------------------------------------------------------------------ bad launches
def test_distributed_without_torchrun_is_a_usage_error(monkeypatch):
    for var in distributed.TORCHRUN_VARS:
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(cli.UsageError, match=r"--distributed needs the variables torchrun sets .*torchrun "
                                             r"--nproc_per_node=K"):
        main(["--task", "point_ctrl", "--distributed"])


def test_torchrun_without_distributed_is_a_usage_error(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(cli.UsageError, match=r"started by torchrun \(WORLD_SIZE=2\) but without --distributed"):
        main(["--task", "point_ctrl"])


def test_more_processes_than_gpus_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    info = distributed.process_info(True, {"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1"})
    assert distributed.process_device(info, "cpu") == "cpu"
    with pytest.raises(ValueError, match=r"local rank 1 has none: 1 GPU\(s\) visible .* --nproc_per_node <= 1"):
        distributed.process_device(info, "cuda:0")
    assert distributed.process_device(distributed.process_info(True, {"WORLD_SIZE": "2", "RANK": "0",
                                                                      "LOCAL_RANK": "0"}), "cuda") == "cuda:0"
    with pytest.raises(ValueError, match=r"RANK=2, LOCAL_RANK=0 must be in \[0, WORLD_SIZE=2\)"):
        distributed.process_info(True, {"WORLD_SIZE": "2", "RANK": "2", "LOCAL_RANK": "0"})


def test_resume_refuses_a_buffer_saved_by_another_number_of_processes(tmp_path):
    """Each process of a resumed DAgger run needs its own saved shard: one line otherwise, before any training."""
    from types import SimpleNamespace

    from foundation.rsl_rl.runner import CheckpointError, FoundationDistillationRunner

    attach = FoundationDistillationRunner._attach_buffer_shard
    path = str(tmp_path / "model_4.pt")
    two_ranks = SimpleNamespace(is_distributed=True, gpu_world_size=2, gpu_global_rank=1, allow_unsafe_checkpoint=False)
    one_rank = SimpleNamespace(is_distributed=False, gpu_world_size=1, gpu_global_rank=0, allow_unsafe_checkpoint=False)
    sharded = {"dagger_state": {"iteration": 5, "buffer_shards": 2}}
    with pytest.raises(CheckpointError, match=r"saved by 2 processes, .* but this run has 1"):
        attach(one_rank, path, dict(sharded), None)
    with pytest.raises(CheckpointError, match=r"shard of rank 1 .* is missing \(.*model_4\.buffer_rank1\.pt\)"):
        attach(two_ranks, path, dict(sharded), None)
    with pytest.raises(CheckpointError, match=r"holds the DAgger buffer of a one-process run, but this run has 2"):
        attach(two_ranks, path, {"dagger_state": {"iteration": 5}, "buffer": {}}, None)
    checkpoints.atomic_torch_save({"buffer": {"total_steps": 3}, "rank": 1}, distributed.shard_path(path, 1))
    loaded = dict(sharded)
    attach(two_ranks, path, loaded, None)
    assert loaded["buffer"] == {"total_steps": 3}
    attach(one_rank, path, {"dagger_state": {"iteration": 5}}, None)  # nothing saved: nothing to do


def test_parameter_digest_and_lost_peer_message():
    state = {"actor_state_dict": {"w": torch.ones(2, 3), "n": torch.tensor(4)}, "optimizer_state_dict": {"lr": 1e-3}}
    digest = distributed.state_digest(state)
    same = {"optimizer_state_dict": {"lr": 1e-3}, "actor_state_dict": {"n": torch.tensor(4), "w": torch.ones(2, 3)}}
    assert distributed.state_digest(same) == digest  # key order does not matter
    flipped = {**state, "actor_state_dict": {**state["actor_state_dict"], "w": torch.ones(2, 3)}}
    flipped["actor_state_dict"]["w"][1, 2] = torch.nextafter(torch.tensor(1.0), torch.tensor(2.0))  # one ulp
    assert distributed.state_digest(flipped) != digest
    gloo = RuntimeError("[/__w/pytorch/pytorch/third_party/gloo/gloo/transport/tcp/pair.cc:537] Read error "
                        "[127.0.0.1]:6540: Connection reset by peer. This is typically caused by a remote worker")
    assert distributed.is_lost_peer(gloo) and not distributed.is_lost_peer(RuntimeError("shape mismatch"))
    info = distributed.ProcessInfo(rank=1, local_rank=1, world_size=2)
    with pytest.raises(SystemExit) as exit_info, distributed.exit_on_lost_peer(info):
        raise gloo
    assert exit_info.value.code == ("error: rank 1: lost contact with another process of the job (Read error "
                                    "[127.0.0.1]:6540: Connection reset by peer); training stopped. Checkpoints "
                                    "written so far are complete; continue with --resume.")
    with pytest.raises(RuntimeError, match="shape mismatch"), distributed.exit_on_lost_peer(info):
        raise RuntimeError("shape mismatch")
