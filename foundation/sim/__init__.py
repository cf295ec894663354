"""Physics backends: one interface (:class:`PhysicsBackend`), three implementations (MuJoCo C as one model of N
copies, MuJoCo C as N simulations on a thread pool, MuJoCo Warp), and the solver options applied to a model."""

from __future__ import annotations

import os

import mujoco
import torch

from foundation.sim.backend import PhysicsBackend
from foundation.sim.options import MujocoCfg
from foundation.sim.usd import USD_EXTENSIONS, load_usd_spec

BACKENDS = ("auto", "mujoco", "mujoco_batch", "mujoco_warp")


def load_spec(path: str) -> mujoco.MjSpec:
    """The single-env model spec of an MJCF or OpenUSD file, for a task's ``_setup_scene`` (tasks do not import
    ``mujoco``). A ``.usd``/``.usda``/``.usdc`` file is read by :func:`foundation.sim.usd.load_usd_spec`.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: if MuJoCo cannot parse it (MuJoCo's message included); for USD see ``load_usd_spec``.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Model file '{path}' does not exist.")
    if path.lower().endswith(USD_EXTENSIONS):
        return load_usd_spec(path)
    return mujoco.MjSpec.from_file(path)


def check_device(device: str) -> torch.device:
    """``torch.device(device)``, checked to be usable here.

    Raises:
        ValueError: on a malformed device string, or a CUDA device when torch sees no CUDA GPU.
    """
    try:
        dev = torch.device(device)
    except RuntimeError as err:
        raise ValueError(f"Invalid device '{device}': {err}. Use 'cpu' or 'cuda[:k]'.") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"Device '{device}' asked for, but torch sees no CUDA GPU. Use device 'cpu'.")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"Device '{device}' asked for, but torch sees {torch.cuda.device_count()} GPU(s): "
                         f"valid are cuda:0..cuda:{torch.cuda.device_count() - 1}.")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"Device '{device}' is not supported. Use 'cpu' or 'cuda[:k]'.")
    return dev


def make_backend(spec: mujoco.MjSpec, num_envs: int, backend: str = "auto", device: str = "cpu",
                 env_spacing: float = 0.0, nconmax: int | None = None, njmax: int | None = None,
                 nthread: int = 0) -> PhysicsBackend:
    """Build the physics backend for ``num_envs`` copies of the single-env model ``spec``.

    Args:
        spec: Single-environment model.
        num_envs: Number of environments, >= 1.
        backend: ``"mujoco"`` (MuJoCo C, one model of N copies, CPU only), ``"mujoco_batch"`` (MuJoCo C, N
            simulations on ``nthread`` threads, CPU only; faster for contact-rich scenes), ``"mujoco_warp"`` (CPU or
            CUDA) or ``"auto"``: ``"mujoco"`` on the CPU, MuJoCo Warp on CUDA.
        device: Torch device for the tensors, ``"cpu"`` or ``"cuda[:k]"``.
        env_spacing: Grid spacing of env origins for the MuJoCo C backend, metres.
        nconmax, njmax: Per-world contact and constraint capacities for MuJoCo Warp.
        nthread: Threads of the ``"mujoco_batch"`` backend (0: one per CPU core).

    Raises:
        ValueError: on an unknown backend name, MuJoCo C asked for a CUDA device, or CUDA asked for without a GPU.
    """
    if backend not in BACKENDS:
        raise ValueError(f"Unknown physics backend '{backend}'. Valid: {', '.join(BACKENDS)}.")
    dev = check_device(device)
    if backend == "auto":
        backend = "mujoco" if dev.type == "cpu" else "mujoco_warp"
    if backend in ("mujoco", "mujoco_batch") and dev.type != "cpu":
        raise ValueError(f"The '{backend}' (C) backend runs on the CPU only; got device '{device}'. "
                         "Use backend 'mujoco_warp' on CUDA.")
    if backend == "mujoco":
        from foundation.sim.mujoco_c import MujocoCBackend

        return MujocoCBackend(spec, num_envs, env_spacing)
    if backend == "mujoco_batch":
        from foundation.sim.mujoco_batch import MujocoBatchBackend

        return MujocoBatchBackend(spec, num_envs, nthread)
    from foundation.sim.mujoco_warp import MujocoWarpBackend

    return MujocoWarpBackend(spec, num_envs, device, nconmax, njmax)


__all__ = ["BACKENDS", "MujocoCfg", "USD_EXTENSIONS", "PhysicsBackend", "check_device", "load_spec", "make_backend"]
