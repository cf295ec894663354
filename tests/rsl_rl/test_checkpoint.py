"""Checkpoint writing and reading without a training run: :func:`atomic_torch_save` under a kill and a serialisation
error, ``weights_only`` loading and its errors (``foundation.rsl_rl.checkpoints``), and the runners' ``save``/``load``
(``foundation.rsl_rl.runner``): what a checkpoint holds and the iteration a loaded run continues from.

Failed writes (disk full, no permission), SIGKILL during a real run, and the messages for files that are not
checkpoints as the CLI shows them are tested in ``test_faults.py`` and ``test_validation.py``.
"""

from __future__ import annotations

import datetime
import errno
import json
import os
from types import SimpleNamespace

import pytest
import torch

from foundation.rsl_rl.checkpoints import (RUN_MARKER, CheckpointError, CheckpointWriteError,
                                           atomic_torch_save, check_checkpoint,
                                           checkpoint_kind, is_complete_run, load_checkpoint, mark_run_complete,
                                           remove_stale_temporaries)
from foundation.rsl_rl.runner import _FoundationRunnerMixin


class Opaque:
    """An arbitrary Python object: a checkpoint holding one needs full unpickling."""


class Alg:
    """An algorithm as the runner mixin sees it: ``save()`` returns a dict, ``load`` says whether the iteration is
    restored (rsl-rl's contract)."""

    def __init__(self, restores_iteration: bool = True) -> None:
        self.weights = torch.arange(4.0)
        self.learning_rate = 3e-4
        self.loaded: dict | None = None
        self.restores_iteration = restores_iteration

    def save(self) -> dict:
        return {"model_state_dict": {"w": self.weights.clone()}, "buffer": {"obs": torch.zeros(3)}}

    def load(self, loaded, load_cfg, strict) -> bool:
        self.loaded, self.load_args = loaded, (load_cfg, strict)
        return self.restores_iteration


class OnPolicyRunner:
    """rsl-rl's ``OnPolicyRunner`` as far as the mixin's ``__init__`` uses it (named so: the mixin derives the
    checkpoint kind from the rsl-rl class name); no env, no learning loop."""

    def __init__(self, env, train_cfg: dict, log_dir: str | None, device: str) -> None:
        self.env, self.cfg, self.device = env, train_cfg, device
        self.is_distributed, self.gpu_world_size, self.gpu_global_rank = False, 1, 0
        self.current_learning_iteration = 0


class Runner(_FoundationRunnerMixin, OnPolicyRunner):
    """The real mixin (``save``/``load``, evaluation hook, :class:`RunLogger`) on :class:`OnPolicyRunner`."""


class Writer:
    """Rank 0's log writer: records ``add_scalar`` calls."""

    def __init__(self) -> None:
        self.scalars: list[tuple[str, float, int]] = []

    def add_scalar(self, key, value, step) -> None:
        self.scalars.append((key, value, step))


def make_runner(alg, log_dir, num_envs: int = 4, **kwargs) -> Runner:
    """A :class:`Runner` of ``alg`` logging to ``log_dir`` with a :class:`Writer` (rsl-rl's ``learn`` creates the
    writer on rank 0); ``kwargs`` are the mixin's keyword-only arguments."""
    cfg = {"algorithm": {}, "num_steps_per_env": 2, "save_interval": 50}
    runner = Runner(SimpleNamespace(cfg=None, num_envs=num_envs), cfg, str(log_dir), "cpu", **kwargs)
    runner.alg = alg
    runner.logger.writer = Writer()
    return runner


# ------------------------------------------------------------------------------------------------- atomic save
def test_a_kill_while_writing_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    """The bytes go to ``path.tmp`` and are renamed onto ``path`` only once on disk: a kill during the write (here
    at the fsync) leaves the last complete checkpoint under ``path``."""
    path = str(tmp_path / "model.pt")
    atomic_torch_save({"v": 1}, path)
    opened = []
    real_open = open

    def recording_open(file, mode="r", *args, **kwargs):
        if "w" in mode:
            opened.append(str(file))
        return real_open(file, mode, *args, **kwargs)

    def killed(fd):
        raise KeyboardInterrupt  # the process dies with the data half on disk

    monkeypatch.setattr("builtins.open", recording_open)
    monkeypatch.setattr(os, "fsync", killed)
    with pytest.raises(KeyboardInterrupt):
        atomic_torch_save({"v": 2}, path)
    monkeypatch.undo()
    assert opened == [path + ".tmp"]  # the checkpoint itself was never opened for writing
    assert torch.load(path, weights_only=True) == {"v": 1}
    atomic_torch_save({"v": 3}, path)
    assert torch.load(path, weights_only=True) == {"v": 3} and not os.path.exists(path + ".tmp")


@pytest.mark.parametrize("error, reason, hint", [
    (OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), os.strerror(errno.ENOSPC),
     " (free some space; earlier checkpoints are intact)"),
    (OSError(errno.EDQUOT, os.strerror(errno.EDQUOT)), os.strerror(errno.EDQUOT),
     " (disk quota exceeded; earlier checkpoints are intact)"),
    (OSError(errno.EACCES, os.strerror(errno.EACCES)), os.strerror(errno.EACCES), " (check the folder's permissions)"),
    (OSError(errno.EROFS, os.strerror(errno.EROFS)), os.strerror(errno.EROFS), ""),
    (OSError(errno.EIO, os.strerror(errno.EIO)), os.strerror(errno.EIO), ""),
    (OSError("the device went away"), "the device went away", ""),  # no errno, no strerror
])
def test_a_failed_write_names_the_os_reason_and_a_hint_and_leaves_no_temporary(tmp_path, monkeypatch, error, reason,
                                                                                hint):
    path = tmp_path / "model_0.pt"
    path.write_bytes(b"earlier")

    def failing(fd):
        raise error

    monkeypatch.setattr(os, "fsync", failing)
    with pytest.raises(CheckpointWriteError) as err:
        atomic_torch_save({"x": torch.zeros(3)}, str(path))
    assert str(err.value) == f"Could not write checkpoint '{path}': {reason}{hint}."
    assert path.read_bytes() == b"earlier" and sorted(p.name for p in tmp_path.iterdir()) == ["model_0.pt"]


def test_an_object_that_cannot_be_serialised_touches_no_file(tmp_path):
    """Serialised in memory first: a failing ``torch.save`` leaves neither a changed checkpoint nor a temporary."""
    path = tmp_path / "model.pt"
    atomic_torch_save({"v": 1}, str(path))
    before = path.read_bytes()
    with pytest.raises(Exception):  # noqa: B017  (pickle raises AttributeError or PicklingError by version)
        atomic_torch_save({"v": 2, "f": lambda: 0}, str(path))
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]


# ----------------------------------------------------------------------------------------------------- loading
def test_load_checkpoint_reads_tensors_and_containers(tmp_path):
    path = tmp_path / "ok.pt"
    torch.save({"w": torch.ones(2), "iter": 3}, path)
    loaded = load_checkpoint(str(path))
    assert loaded["iter"] == 3 and torch.equal(loaded["w"], torch.ones(2))


def test_load_checkpoint_errors_name_the_file_and_the_problem(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(str(tmp_path / "missing.pt"))
    corrupt = tmp_path / "corrupt.pt"  # a truncated checkpoint
    torch.save({"w": torch.ones(1000)}, corrupt)
    corrupt.write_bytes(corrupt.read_bytes()[:1500])
    with pytest.raises(CheckpointError, match="damaged or truncated") as err:
        load_checkpoint(str(corrupt))
    assert "corrupt.pt" in str(err.value) and "\n" not in str(err.value)
    tensor = tmp_path / "tensor.pt"
    torch.save(torch.zeros(2), tensor)
    with pytest.raises(CheckpointError, match="holds a Tensor, not an rsl-rl checkpoint dict"):
        load_checkpoint(str(tensor))


def test_a_checkpoint_that_needs_unpickling_is_refused_unless_allowed(tmp_path):
    path = tmp_path / "opaque.pt"
    torch.save({"iter": 1, "note": Opaque()}, path)
    with pytest.raises(CheckpointError, match="contains Python objects") as err:
        load_checkpoint(str(path))
    assert "--allow_unsafe_checkpoint" in str(err.value) and "opaque.pt" in str(err.value)
    loaded = load_checkpoint(str(path), allow_unsafe=True)
    assert loaded["iter"] == 1 and isinstance(loaded["note"], Opaque)


def test_checkpoint_kind_is_the_saved_kind_else_inferred_from_rsl_rl_keys():
    """Our checkpoints say their kind; older ones (rsl-rl's own) are told apart by their model keys."""
    assert checkpoint_kind({"run": {"kind": "ppo"}}) == "ppo"
    assert checkpoint_kind({"run": {"kind": "distillation"}, "actor_state_dict": {}}) == "distillation"
    assert checkpoint_kind({"student_state_dict": {}, "teacher_state_dict": {}}) == "distillation"
    assert checkpoint_kind({"run": None, "actor_state_dict": {}}) == "ppo"
    assert checkpoint_kind({"run": {}, "iter": 3}) is None


def test_check_checkpoint_refuses_python_objects_unless_allowed(tmp_path):
    path = tmp_path / "opaque.pt"
    torch.save({"actor_state_dict": {}, "note": Opaque()}, path)
    with pytest.raises(CheckpointError, match="allow_unsafe_checkpoint"):
        check_checkpoint(str(path), "ppo")
    assert isinstance(check_checkpoint(str(path), "ppo", allow_unsafe=True)["note"], Opaque)


def test_check_checkpoint_refuses_another_kind_env_or_task(tmp_path):
    """The saved run's kind, env class and task must be the expected ones; entries a checkpoint lacks (older
    checkpoints) are not held against it."""
    path = str(tmp_path / "model.pt")
    run = {"kind": "ppo", "env_entry_point": "pkg:EnvA", "task": "task_a"}
    torch.save({"actor_state_dict": {}, "run": run}, path)
    assert check_checkpoint(path, "ppo", env_entry_point="pkg:EnvA", task="task_a")["run"] == run
    with pytest.raises(CheckpointError, match="must be a distillation") as err:
        check_checkpoint(path, "distillation")
    assert "its keys" not in str(err.value)
    with pytest.raises(CheckpointError, match="trained on task 'task_a'"):
        check_checkpoint(path, "ppo", env_entry_point="pkg:EnvB")
    with pytest.raises(CheckpointError, match="not of 'task_b'"):
        check_checkpoint(path, "ppo", task="task_b")
    torch.save({"actor_state_dict": {}}, path)  # no run entry: nothing to hold against it
    check_checkpoint(path, "ppo", env_entry_point="pkg:EnvB", task="task_b")
    torch.save({"iter": 3}, path)
    with pytest.raises(CheckpointError, match=r"not an rsl-rl checkpoint of this project \(its keys: \['iter'\]\)"):
        check_checkpoint(path, "ppo")


def test_a_run_is_marked_complete_once(tmp_path):
    run = str(tmp_path)
    assert not is_complete_run(run)
    mark_run_complete(run, {"task": "point_ctrl", "kind": "ppo"})
    assert is_complete_run(run)
    first = json.loads((tmp_path / RUN_MARKER).read_text())
    assert first["task"] == "point_ctrl" and first["kind"] == "ppo"
    datetime.datetime.strptime(first["created"], "%Y-%m-%dT%H:%M:%S")  # an ISO timestamp
    mark_run_complete(run, {"task": "other", "kind": "distillation"})  # a later save keeps the first record
    assert json.loads((tmp_path / RUN_MARKER).read_text()) == first


def test_only_stale_temporaries_are_removed(tmp_path):
    """``*.tmp`` files older than the age limit go, in the run folder and its ``params/``; younger ones (a save in
    progress) and other files stay."""
    (tmp_path / "params").mkdir()
    old = [tmp_path / "model_1.pt.tmp", tmp_path / "params" / "env.yaml.tmp"]
    young = tmp_path / "model_2.pt.tmp"
    other = tmp_path / "model_1.pt"
    for f in [*old, young, other]:
        f.write_bytes(b"x")
    for f in [*old, other]:
        os.utime(f, (os.path.getmtime(f) - 120, os.path.getmtime(f) - 120))
    removed = remove_stale_temporaries([str(tmp_path)], min_age_s=60.0)
    assert sorted(removed) == sorted(str(f) for f in old)
    assert not any(f.exists() for f in old) and young.exists() and other.exists()
    assert remove_stale_temporaries([str(tmp_path)]) == []  # the default age limit keeps the young one too
    assert remove_stale_temporaries([str(tmp_path)], min_age_s=0.0) == [str(young)]


# ---------------------------------------------------------------------------------------------- runner save/load
def test_runner_save_writes_the_algorithm_state_iteration_infos_and_run(tmp_path):
    runner = make_runner(Alg(), tmp_path, run_info={"task": "point_ctrl", "experiment_name": "exp"})
    runner.current_learning_iteration = 7
    path = str(tmp_path / "model_7.pt")
    runner.save(path, infos={"note": "x"})
    saved = torch.load(path, weights_only=True)
    assert saved["iter"] == 7 and saved["infos"] == {"note": "x"}
    assert torch.equal(saved["model_state_dict"]["w"], torch.arange(4.0)) and "buffer" in saved
    assert saved["run"] == {"task": "point_ctrl", "experiment_name": "exp", "kind": "ppo"}
    assert saved["train_state"]["learning_rate"] == 3e-4 and saved["train_state"]["best_eval"] is None
    marker = json.loads((tmp_path / RUN_MARKER).read_text())  # the run folder is complete
    assert (marker["task"], marker["kind"], marker["experiment_name"]) == ("point_ctrl", "ppo", "exp")
    runner.save(path, with_buffer=False)  # best_model.pt: a policy, not a run to resume
    assert "buffer" not in torch.load(path, weights_only=True)
    assert not list(tmp_path.glob("*.tmp"))


def test_runner_load_continues_after_the_saved_iteration(tmp_path):
    path = str(tmp_path / "model_7.pt")
    torch.save({"iter": 7, "infos": {"eval": 1}, "model_state_dict": {}}, path)
    runner = make_runner(Alg(), tmp_path)
    assert runner.load(path) == {"eval": 1}
    assert runner.current_learning_iteration == 8 and runner.alg.loaded["iter"] == 7
    assert runner.alg.load_args == (None, True)  # rsl-rl's defaults: strict loading
    runner.load(path, load_cfg={"actor": True}, strict=False)
    assert runner.alg.load_args == ({"actor": True}, False)
    teacher_only = make_runner(Alg(restores_iteration=False), tmp_path)  # e.g. a PPO teacher in a distillation run
    teacher_only.load(path)
    assert teacher_only.current_learning_iteration == 0


def test_runner_load_honours_allow_unsafe_checkpoint(tmp_path):
    path = str(tmp_path / "opaque.pt")
    torch.save({"iter": 0, "note": Opaque()}, path)
    with pytest.raises(CheckpointError, match="contains Python objects"):
        make_runner(Alg(), tmp_path).load(path)
    runner = make_runner(Alg(), tmp_path, allow_unsafe_checkpoint=True)
    runner.load(path)
    assert runner.current_learning_iteration == 1


def test_map_location_is_passed_to_torch_load(tmp_path):
    """Checkpoints are mapped where asked (e.g. a GPU run's checkpoint onto the CPU); "meta" shows it on any
    machine, for safe and for unsafe loading, directly and through the runner."""
    path = str(tmp_path / "w.pt")
    torch.save({"w": torch.ones(3), "iter": 0}, path)
    assert load_checkpoint(path, map_location="meta")["w"].is_meta
    unsafe = str(tmp_path / "opaque.pt")
    torch.save({"w": torch.ones(3), "note": Opaque()}, unsafe)
    assert load_checkpoint(unsafe, map_location="meta", allow_unsafe=True)["w"].is_meta
    runner = make_runner(Alg(), tmp_path)
    runner.load(path, map_location="meta")
    assert runner.alg.loaded["w"].is_meta
