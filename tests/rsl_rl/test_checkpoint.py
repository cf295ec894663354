"""Checkpoint writing and reading of the runners (``foundation.rsl_rl.runner``), without a training run: atomic
saves, ``weights_only`` loading and its errors, and the iteration a loaded run continues from."""

from __future__ import annotations

import os
import pickle

import pytest
import torch

from foundation.rsl_rl.runner import CheckpointError, _FoundationRunnerMixin, atomic_torch_save, load_checkpoint


class Opaque:
    """An arbitrary Python object: a checkpoint holding one needs full unpickling."""


class Alg:
    """An algorithm as the runner mixin sees it: ``save()`` returns a dict, ``load`` says whether the iteration is
    restored (rsl-rl's contract)."""

    def __init__(self, restores_iteration: bool = True) -> None:
        self.weights = torch.arange(4.0)
        self.loaded: dict | None = None
        self.restores_iteration = restores_iteration

    def save(self) -> dict:
        return {"model_state_dict": {"w": self.weights.clone()}, "buffer": {"obs": torch.zeros(3)}}

    def load(self, loaded, load_cfg, strict) -> bool:
        self.loaded, self.load_args = loaded, (load_cfg, strict)
        return self.restores_iteration


class Logger:
    def __init__(self) -> None:
        self.saved = []

    def save_model(self, path, it) -> None:
        self.saved.append((path, it))


class Runner(_FoundationRunnerMixin):
    def __init__(self, alg: Alg) -> None:
        self.alg, self.logger, self.current_learning_iteration = alg, Logger(), 0


def test_atomic_save_replaces_the_file_in_one_step(tmp_path, monkeypatch):
    """The data goes to ``path.tmp`` and is renamed onto ``path``: a crash while writing leaves the previous file."""
    path = str(tmp_path / "model.pt")
    atomic_torch_save({"v": 1}, path)
    writes = []
    real_save = torch.save

    def crashing_save(obj, f, *args, **kwargs):
        writes.append(str(f))
        with open(f, "wb") as out:
            out.write(b"trunc")  # half a file, then the process dies
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", crashing_save)
    with pytest.raises(KeyboardInterrupt):
        atomic_torch_save({"v": 2}, path)
    monkeypatch.setattr(torch, "save", real_save)
    assert writes == [path + ".tmp"]
    assert torch.load(path, weights_only=True) == {"v": 1}  # the last complete checkpoint is intact
    atomic_torch_save({"v": 3}, path)
    assert torch.load(path, weights_only=True) == {"v": 3} and not os.path.exists(path + ".tmp")


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
    with pytest.raises(CheckpointError, match="could not be read") as err:
        load_checkpoint(str(corrupt))
    assert "corrupt.pt" in str(err.value)
    tensor = tmp_path / "tensor.pt"
    torch.save(torch.zeros(2), tensor)
    with pytest.raises(CheckpointError, match="holds a Tensor, not an rsl-rl checkpoint dict"):
        load_checkpoint(str(tensor))


def test_a_checkpoint_that_needs_unpickling_is_refused_unless_allowed(tmp_path):
    path = tmp_path / "opaque.pt"
    torch.save({"iter": 1, "note": Opaque()}, path)
    with pytest.raises(CheckpointError, match="--allow_unsafe_checkpoint") as err:
        load_checkpoint(str(path))
    assert isinstance(err.value.__cause__, pickle.UnpicklingError)
    loaded = load_checkpoint(str(path), allow_unsafe=True)
    assert loaded["iter"] == 1 and isinstance(loaded["note"], Opaque)


def test_runner_save_writes_the_algorithm_state_iteration_and_infos(tmp_path):
    runner = Runner(Alg())
    runner.current_learning_iteration = 7
    path = str(tmp_path / "model_7.pt")
    runner.save(path, infos={"note": "x"})
    saved = torch.load(path, weights_only=True)
    assert saved["iter"] == 7 and saved["infos"] == {"note": "x"}
    assert torch.equal(saved["model_state_dict"]["w"], torch.arange(4.0)) and "buffer" in saved
    assert runner.logger.saved == [(path, 7)]
    runner.save(path, with_buffer=False)  # best_model.pt: a policy, not a run to resume
    assert "buffer" not in torch.load(path, weights_only=True)


def test_runner_load_continues_after_the_saved_iteration(tmp_path):
    path = str(tmp_path / "model_7.pt")
    torch.save({"iter": 7, "infos": {"eval": 1}, "model_state_dict": {}}, path)
    runner = Runner(Alg())
    assert runner.load(path) == {"eval": 1}
    assert runner.current_learning_iteration == 8 and runner.alg.loaded["iter"] == 7
    assert runner.alg.load_args == (None, True)  # rsl-rl's defaults: strict loading
    runner.load(path, load_cfg={"actor": True}, strict=False)
    assert runner.alg.load_args == ({"actor": True}, False)
    teacher_only = Runner(Alg(restores_iteration=False))  # e.g. a PPO teacher loaded into a distillation run
    teacher_only.load(path)
    assert teacher_only.current_learning_iteration == 0


def test_runner_load_honours_allow_unsafe_checkpoint(tmp_path):
    path = str(tmp_path / "opaque.pt")
    torch.save({"iter": 0, "note": Opaque()}, path)
    runner = Runner(Alg())
    with pytest.raises(CheckpointError):
        runner.load(path)
    runner.allow_unsafe_checkpoint = True
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
    runner = Runner(Alg())
    runner.load(path, map_location="meta")
    assert runner.alg.loaded["w"].is_meta
