"""Data-parallel training across processes started by ``torchrun``: who this process is, its device, the process
group, and the helpers that keep the processes in step.

``torchrun --nproc_per_node=K foundation/rsl_rl/train.py --task ... --distributed`` starts K copies of ``train.py``;
torchrun gives each one ``WORLD_SIZE``, ``RANK`` (global) and ``LOCAL_RANK`` (on its node). Every process builds its
own ``num_envs`` environments (seeds offset by its rank) and its own rollouts; rsl-rl's algorithms average the
gradients of every optimiser step across processes (all-reduce) and start from rank 0's parameters (broadcast), so
the policies stay bit-identical. The backend is NCCL on CUDA (process ``LOCAL_RANK`` drives ``cuda:<LOCAL_RANK>``)
and Gloo on the CPU. Rank 0 alone creates the run folder, logs, evaluates and writes checkpoints; a DAgger run with
``save_buffer`` also writes one buffer shard per rank (:func:`shard_path`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import signal
from dataclasses import dataclass

import torch
import torch.distributed as dist

#: What torchrun sets in every process it starts.
TORCHRUN_VARS = ("WORLD_SIZE", "RANK", "LOCAL_RANK")
LAUNCH_LINE = "torchrun --nproc_per_node=K foundation/rsl_rl/train.py --task <task> --distributed [...]"


@dataclass(frozen=True)
class ProcessInfo:
    """This process's place in a (possibly one-process) job.

    Attributes:
        rank: Global rank, 0..world_size-1 (0 writes every file).
        local_rank: Rank on this node (selects ``cuda:<local_rank>``).
        world_size: Number of processes of the job.
    """

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_distributed(self) -> bool:
        """More than one process."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that logs, evaluates and writes checkpoints."""
        return self.rank == 0


def process_info(distributed: bool, environ: dict | None = None) -> ProcessInfo:
    """This process's :class:`ProcessInfo` from torchrun's environment variables.

    Args:
        distributed: ``--distributed`` was given.
        environ: The environment (default ``os.environ``).

    Raises:
        ValueError: one line: ``--distributed`` without torchrun's variables (or with invalid ones), or a process
            started by torchrun with ``WORLD_SIZE > 1`` but without ``--distributed``.
    """
    environ = os.environ if environ is None else environ
    world = environ.get("WORLD_SIZE")
    if not distributed:
        if world not in (None, "", "1"):
            raise ValueError(f"this process was started by torchrun (WORLD_SIZE={world}) but without --distributed: "
                             f"add --distributed ({LAUNCH_LINE}), or run train.py with python for one process.")
        return ProcessInfo()
    missing = [v for v in TORCHRUN_VARS if not environ.get(v)]
    if missing:
        raise ValueError(f"--distributed needs the variables torchrun sets ({', '.join(missing)} missing): launch "
                         f"with `{LAUNCH_LINE}`.")
    try:
        info = ProcessInfo(int(environ["RANK"]), int(environ["LOCAL_RANK"]), int(environ["WORLD_SIZE"]))
    except ValueError:
        raise ValueError("torchrun's RANK, LOCAL_RANK and WORLD_SIZE must be integers, got "
                         f"{', '.join(f'{v}={environ[v]!r}' for v in TORCHRUN_VARS)}.") from None
    if not (0 <= info.rank < info.world_size and 0 <= info.local_rank < info.world_size):
        raise ValueError(f"invalid torchrun ranks: RANK={info.rank}, LOCAL_RANK={info.local_rank} must be in "
                         f"[0, WORLD_SIZE={info.world_size}).")
    return info


def process_device(info: ProcessInfo, device: str) -> str:
    """The device of this process: ``cpu`` stays ``cpu``; any CUDA device becomes ``cuda:<local_rank>`` (one GPU per
    process on each node).

    Raises:
        ValueError: if this node has no GPU ``local_rank`` (more processes per node than visible GPUs).
    """
    if not info.is_distributed or not device.startswith("cuda"):
        return device
    count = torch.cuda.device_count()
    if info.local_rank >= count:
        raise ValueError(f"--distributed on {device} uses one GPU per process, but local rank {info.local_rank} has "
                         f"none: {count} GPU(s) visible on this node (CUDA_VISIBLE_DEVICES="
                         f"{os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}); use --nproc_per_node <= {count}.")
    return f"cuda:{info.local_rank}"


def backend(device: str) -> str:
    """``"nccl"`` for a CUDA device, ``"gloo"`` for the CPU."""
    return "nccl" if str(device).startswith("cuda") else "gloo"


def init_process_group(info: ProcessInfo, device: str) -> None:
    """Join the job's process group (rendezvous at torchrun's ``MASTER_ADDR``/``MASTER_PORT``) with the backend of
    ``device``; on CUDA, make ``device`` this process's current GPU. No-op if already initialised."""
    if dist.is_initialized():
        return
    if device.startswith("cuda"):
        torch.cuda.set_device(device)
    dist.init_process_group(backend(device), rank=info.rank, world_size=info.world_size)


def stop_on_sigterm(info: ProcessInfo) -> None:
    """Turn the SIGTERM torchrun sends to the surviving processes when one of them ends (crash, kill) into a one-line
    ``SystemExit`` naming this rank. Checkpoints are written atomically, so none is left truncated."""

    def handler(signum, frame):  # noqa: ARG001  (signal handler signature)
        raise SystemExit(f"error: rank {info.rank}: stopped by SIGTERM (torchrun stops every process when one of "
                         "the job's ends: see its message above); checkpoints written so far are complete, continue "
                         "with --resume.")

    signal.signal(signal.SIGTERM, handler)


#: Words of the errors a collective raises when another process of the job is gone (Gloo raises plain
#: ``RuntimeError``s from its TCP transport; NCCL and c10d raise ``DistError``s).
LOST_PEER_SIGNS = ("gloo/transport", "Connection reset by peer", "Connection closed by peer", "Broken pipe")


def is_lost_peer(err: BaseException) -> bool:
    """Whether ``err`` is a failed collective (another process died or was killed), not a bug of this process."""
    return isinstance(err, dist.DistError) or (isinstance(err, RuntimeError)
                                                and any(sign in str(err) for sign in LOST_PEER_SIGNS))


def lost_peer_message(info: ProcessInfo, err: BaseException) -> str:
    """The one-line message of a collective that failed because another process died (the backend's first
    sentence, without its source location)."""
    first = re.sub(r"^\[[^\]]*\]\s*", "", (str(err).strip().splitlines() or [type(err).__name__])[0])
    return (f"error: rank {info.rank}: lost contact with another process of the job ({first.split('. ')[0][:160]}); "
            "training stopped. Checkpoints written so far are complete; continue with --resume.")


@contextlib.contextmanager
def exit_on_lost_peer(info: ProcessInfo):
    """Turn a collective that fails because another process died into a one-line ``SystemExit``
    (:func:`lost_peer_message`); other errors pass unchanged."""
    try:
        yield
    except RuntimeError as err:
        if info.is_distributed and is_lost_peer(err):
            raise SystemExit(lost_peer_message(info, err)) from None
        raise


def broadcast_object(obj: object, info: ProcessInfo) -> object:
    """Rank 0's ``obj`` on every process (picklable objects, e.g. the run folder's path)."""
    if not info.is_distributed:
        return obj
    box = [obj if info.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def state_digest(state: dict) -> str:
    """SHA-256 (hex) of a nested dict of tensors and plain values, in sorted key order: equal digests on two
    processes mean bit-identical parameters (and optimiser state, when included)."""
    h = hashlib.sha256()

    def feed(key: str, value: object) -> None:
        if isinstance(value, dict):
            for k in sorted(value, key=str):
                feed(f"{key}/{k}", value[k])
        elif isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                feed(f"{key}/{i}", v)
        elif isinstance(value, torch.Tensor):
            t = value.detach().cpu().contiguous()
            h.update(f"{key}:{t.dtype}:{tuple(t.shape)}".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
        else:
            h.update(f"{key}={value!r}".encode())

    feed("", state)
    return h.hexdigest()


def model_state(saved: dict) -> dict:
    """The ``*_state_dict`` entries (models and optimiser) of an algorithm's ``save()`` dict or a checkpoint."""
    return {k: v for k, v in saved.items() if k.endswith("_state_dict")}


def check_in_sync(saved: dict, info: ProcessInfo) -> str:
    """Compare this process's models and optimiser (``alg.save()``) with every other process's; print
    ``[distributed] rank r/W: parameters sha256 <digest>`` and return the digest.

    Raises:
        RuntimeError: if any process holds different parameters (data-parallel training went out of step).
    """
    digest = state_digest(model_state(saved))
    print(f"[distributed] rank {info.rank}/{info.world_size}: parameters sha256 {digest}", flush=True)
    if info.is_distributed:
        digests = [None] * info.world_size
        dist.all_gather_object(digests, digest)
        if len(set(digests)) != 1:
            raise RuntimeError(f"the processes' parameters differ after training (sha256 by rank: {digests}).")
    return digest


def shard_path(checkpoint: str, rank: int) -> str:
    """The DAgger buffer shard of ``rank`` that goes with ``checkpoint``: ``model_<it>.buffer_rank<rank>.pt``."""
    return f"{checkpoint.removesuffix('.pt')}.buffer_rank{rank}.pt"
