"""Checkpoint files and run folders: atomic writes, safe reads, what a checkpoint is, and which runs are complete.

A checkpoint is rsl-rl's dict (``actor_state_dict``/``student_state_dict``, ``optimizer_state_dict``, ``iter``,
``infos``) plus ours: ``run`` (kind ``"ppo"``/``"distillation"``, task id, env class, configs) and ``train_state``
(what a resumed run needs beyond the weights). A run folder is *complete* once it holds ``run.json``, written
atomically right after its first checkpoint; folders without it (a kill before the first save, a failed start) are
skipped by every lookup.
"""

from __future__ import annotations

import errno
import glob
import io
import json
import os
import pickle
import time
import zipfile

import torch

#: The marker file of a complete run folder.
RUN_MARKER = "run.json"
#: Kind of the policy a runner trains, by rsl-rl runner class name.
KIND_OF_RUNNER = {"OnPolicyRunner": "ppo", "DistillationRunner": "distillation"}
#: Stale temporary files older than this are removed when a run starts (a live save takes well under a second).
STALE_TMP_AGE_S = 60.0


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, unreadable, or not what was expected."""


class CheckpointWriteError(CheckpointError):
    """A checkpoint could not be written (disk full, no permission, ...); the previous files are intact."""


def _write_atomic(data: bytes, path: str) -> None:
    """Write ``data`` to ``path + ".tmp"``, fsync, rename over ``path``; on failure remove the temporary file.

    Raises:
        CheckpointWriteError: naming the file and the reason (``No space left on device``, ``Permission denied``).
    """
    tmp = f"{path}.tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        try:
            os.remove(tmp)
        except OSError:
            pass
        reason = err.strerror or str(err)
        hint = {errno.ENOSPC: " (free some space; earlier checkpoints are intact)",
                errno.EDQUOT: " (disk quota exceeded; earlier checkpoints are intact)",
                errno.EACCES: " (check the folder's permissions)", errno.EROFS: ""}.get(err.errno, "")
        raise CheckpointWriteError(f"Could not write checkpoint '{path}': {reason}{hint}.") from None


def atomic_torch_save(obj: object, path: str) -> None:
    """``torch.save`` ``obj`` to ``path`` atomically: serialised in memory first, so a failing write reports the OS
    error (not a torch archive error), and a crash or kill never leaves a truncated file at ``path``.

    Raises:
        CheckpointWriteError: if the file cannot be written; ``path`` keeps its previous content.
    """
    buf = io.BytesIO()
    torch.save(obj, buf)
    _write_atomic(buf.getvalue(), path)


def write_json_atomic(obj: dict, path: str) -> None:
    """Write ``obj`` as JSON to ``path`` atomically (see :func:`atomic_torch_save`)."""
    _write_atomic(json.dumps(obj, indent=1, sort_keys=True).encode(), path)


def load_checkpoint(path: str, map_location: str | None = None, allow_unsafe: bool = False,
                    mmap: bool = False) -> dict:
    """Load a checkpoint dict with ``torch.load(weights_only=True)``.

    Args:
        path: Checkpoint file.
        map_location: Device to map tensors to.
        allow_unsafe: Fall back to full unpickling for checkpoints that hold arbitrary Python objects. Only for files
            you trust: unpickling can execute code.
        mmap: Map the file instead of reading it (cheap inspection of large checkpoints).

    Raises:
        CheckpointError: one line saying what the file is: missing, a directory, empty, not a PyTorch checkpoint
            (e.g. a text file), damaged, holding Python objects (without ``allow_unsafe``), or not a dict.
    """
    if os.path.isdir(path):
        raise CheckpointError(f"Checkpoint '{path}' is a directory, not a checkpoint file.")
    if not os.path.isfile(path):
        raise CheckpointError(f"Checkpoint '{path}' does not exist.")
    if os.path.getsize(path) == 0:
        raise CheckpointError(f"Checkpoint '{path}' is empty (0 bytes).")
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as f:
            if f.read(4) == b"PK\x03\x04":
                raise CheckpointError(f"Checkpoint '{path}' is damaged or truncated: a zip archive without its end "
                                      "(an interrupted copy or write?).")
        raise CheckpointError(f"'{path}' is not a PyTorch checkpoint (torch.save writes a zip archive; this file is "
                              f"{_describe(path)}).")
    try:
        loaded = torch.load(path, weights_only=True, map_location=map_location, mmap=mmap)
    except pickle.UnpicklingError as err:
        if not allow_unsafe:
            raise CheckpointError(
                f"Checkpoint '{path}' contains Python objects that torch.load(weights_only=True) refuses "
                f"({str(err).splitlines()[0]}). If you trust the file, pass --allow_unsafe_checkpoint.") from None
        try:
            loaded = torch.load(path, weights_only=False, map_location=map_location)
        except Exception as err2:  # noqa: BLE001  (unpickling a foreign file can raise anything)
            raise CheckpointError(f"Checkpoint '{path}' could not be unpickled: {_first_line(err2)}") from None
    except Exception as err:  # noqa: BLE001  (a damaged archive raises anything from zipfile to RuntimeError)
        raise CheckpointError(f"Checkpoint '{path}' is damaged or truncated: {_first_line(err)}") from None
    if not isinstance(loaded, dict):
        raise CheckpointError(f"Checkpoint '{path}' holds a {type(loaded).__name__}, not an rsl-rl checkpoint dict.")
    return loaded


def _first_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"


def _describe(path: str) -> str:
    with open(path, "rb") as f:
        head = f.read(512)
    try:
        head.decode("utf-8")
        return "text"
    except UnicodeDecodeError:
        return "binary data of another format"


def checkpoint_kind(loaded: dict) -> str | None:
    """``"ppo"`` or ``"distillation"``: the saved kind, else inferred from rsl-rl's keys (checkpoints of older
    versions); None if neither."""
    kind = (loaded.get("run") or {}).get("kind")
    if kind:
        return kind
    if "student_state_dict" in loaded:
        return "distillation"
    if "actor_state_dict" in loaded:
        return "ppo"
    return None


def check_checkpoint(path: str, kind: str, env_entry_point: str | None = None, task: str | None = None,
                     role: str = "checkpoint", allow_unsafe: bool = False) -> dict:
    """Check that ``path`` is a checkpoint of ``kind`` (and of the env class / task when given); returns its dict
    (memory-mapped).

    Raises:
        CheckpointError: one line naming the file, what it is and what was expected.
    """
    loaded = load_checkpoint(path, "cpu", allow_unsafe, mmap=True)
    found = checkpoint_kind(loaded)
    names = {"ppo": "a PPO (teacher) checkpoint ('actor_state_dict')",
             "distillation": "a distillation (student) checkpoint ('student_state_dict')",
             None: "not an rsl-rl checkpoint of this project"}
    if found != kind:
        keys = "" if found else f" (its keys: {sorted(loaded)})"
        raise CheckpointError(f"'{path}' is {names[found]}{keys}, but the {role} must be {names[kind]}.")
    run = loaded.get("run") or {}
    if env_entry_point and run.get("env_entry_point") not in (None, env_entry_point):
        raise CheckpointError(f"'{path}' was trained on task '{run.get('task')}' ({run['env_entry_point']}), not on "
                              f"this task's environment ({env_entry_point}).")
    if task and run.get("task") not in (None, task):
        raise CheckpointError(f"'{path}' is a run of task '{run['task']}', not of '{task}'.")
    return loaded


def is_complete_run(run_dir: str) -> bool:
    """Whether ``run_dir`` holds the :data:`RUN_MARKER` written with its first checkpoint."""
    return os.path.isfile(os.path.join(run_dir, RUN_MARKER))


def mark_run_complete(run_dir: str, info: dict) -> None:
    """Write ``run.json`` (``info``: task, kind, experiment) into ``run_dir`` atomically, if not there yet."""
    path = os.path.join(run_dir, RUN_MARKER)
    if not os.path.exists(path):
        write_json_atomic({**info, "created": time.strftime("%Y-%m-%dT%H:%M:%S")}, path)


def remove_stale_temporaries(folders: list[str], min_age_s: float = STALE_TMP_AGE_S) -> list[str]:
    """Remove ``*.tmp`` files (left by a kill during a save) older than ``min_age_s`` in ``folders`` and their
    ``params/``; returns the removed paths. Younger ones may belong to a save in progress and are kept."""
    removed = []
    now = time.time()
    for folder in folders:
        for tmp in glob.glob(os.path.join(folder, "*.tmp")) + glob.glob(os.path.join(folder, "params", "*.tmp")):
            try:
                if now - os.path.getmtime(tmp) >= min_age_s:
                    os.remove(tmp)
                    removed.append(tmp)
            except OSError:
                pass
    return removed
