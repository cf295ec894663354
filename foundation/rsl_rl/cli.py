"""Command-line handling shared by ``train.py`` and ``play.py``: Isaac Lab-style flags, Hydra-style overrides, runs.

Every flag is sugar for an override (``--num_envs 256`` is ``env.scene.num_envs=256``); flags apply first, then the
positional overrides, and everything is validated against the config dataclasses before any work starts.
"""

from __future__ import annotations

import argparse
import glob
import itertools
import os
import re
from datetime import datetime

import torch

from foundation.sim import check_device
from foundation.tasks import load_task_cfgs, registered_tasks
from foundation.utils.config import ConfigError, apply_overrides

LOG_ROOT = os.path.join("logs", "rsl_rl")


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """Flags of both scripts: task, sizes, seed, device, checkpoint selection, overrides."""
    parser.add_argument("--task", required=True, help=f"Task id: one of {', '.join(registered_tasks())}.")
    parser.add_argument("--num_envs", type=int, help="Number of environments (env.scene.num_envs).")
    parser.add_argument("--seed", type=int, help="Seed of torch and the environment (agent.seed, env.seed).")
    parser.add_argument("--device", help="Device of training and simulation, e.g. cpu or cuda:0.")
    parser.add_argument("--load_run", help="Run folder (regex) under logs/rsl_rl/<experiment>/; default newest.")
    parser.add_argument("--checkpoint", help="Checkpoint file: a path, or a regex of a file in the run folder.")
    parser.add_argument("--allow_unsafe_checkpoint", action="store_true",
                        help="Allow checkpoints that need full unpickling (only for files you trust).")
    parser.add_argument("overrides", nargs="*", help="Config overrides, e.g. env.scene.num_envs=256 "
                                                     "agent.algorithm.learning_rate=3e-4.")


def resolve_cfgs(args: argparse.Namespace, extra: dict[str, object] | None = None):
    """The task's ``(env_cfg, agent_cfg)`` with flags and overrides applied (``env.seed`` defaults to ``agent.seed``).

    Raises:
        SystemExit: with the error message on an unknown task or a bad override (before anything is built).
    """
    try:
        env_cfg, agent_cfg = load_task_cfgs(args.task)
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None
    flags = {"env.scene.num_envs": args.num_envs, "env.seed": args.seed, "agent.seed": args.seed,
             "env.sim.device": args.device, "agent.device": args.device, **(extra or {})}
    overrides = [f"{k}={v}" for k, v in flags.items() if v is not None] + list(args.overrides)
    try:
        cfgs = apply_overrides({"env": env_cfg, "agent": agent_cfg}, overrides)
    except ConfigError as err:
        raise SystemExit(f"error: {err}") from None
    try:
        check_device(cfgs["agent"].device)
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None
    if cfgs["env"].seed is None:  # one --seed (agent.seed) seeds torch and the environment
        cfgs["env"].seed = cfgs["agent"].seed
    if cfgs["env"].sim.device != cfgs["agent"].device:
        raise SystemExit(f"error: env.sim.device ({cfgs['env'].sim.device}) and agent.device "
                         f"({cfgs['agent'].device}) differ; use --device to set both.")
    return cfgs["env"], cfgs["agent"]


def setup_torch(agent_cfg) -> None:
    """Seed torch with ``agent.seed`` and, on the CPU, use ``agent.torch_threads`` threads (more oversubscribe a
    small CPU: DESIGN.md §3 measured PPO 30x slower with 2 threads on 2 cores)."""
    torch.manual_seed(agent_cfg.seed)
    if agent_cfg.device == "cpu":
        torch.set_num_threads(agent_cfg.torch_threads)


def without_dataset(agent_cfg, num_envs: int) -> None:
    """Shrink a distillation config's DAgger buffer to one env step (``num_envs`` transitions): playing or evaluating
    a policy needs no dataset, and the default one would preallocate hundreds of MiB. No-op for other configs."""
    if hasattr(getattr(agent_cfg, "algorithm", None), "max_buffer_size"):
        agent_cfg.algorithm.max_buffer_size = num_envs


def new_run_dir(experiment_name: str, run_name: str) -> str:
    """Create and return ``logs/rsl_rl/<experiment>/<timestamp>[_<run_name>]`` (``_1``, ``_2``… if it exists)."""
    name = datetime.now().strftime("%Y-%m-%d_%H-%M-%S") + (f"_{run_name}" if run_name else "")
    base = os.path.abspath(os.path.join(LOG_ROOT, experiment_name, name))
    os.makedirs(os.path.dirname(base), exist_ok=True)
    for suffix in itertools.chain([""], (f"_{i}" for i in itertools.count(1))):
        try:
            os.mkdir(base + suffix)
            return base + suffix
        except FileExistsError:
            continue
    raise AssertionError("unreachable")


def _iteration_order(filename: str) -> tuple[int, str]:
    """Sort key: ``model_<it>.pt`` by iteration number, other names after equal iterations alphabetically."""
    match = re.fullmatch(r"model_(\d+)\.pt", filename)
    return (int(match.group(1)) if match else -1, filename)


def find_checkpoint(experiment_name: str, load_run: str | None, checkpoint: str | None,
                    prefer_best: bool = True) -> str:
    """The checkpoint chosen by ``--load_run``/``--checkpoint`` under ``logs/rsl_rl/<experiment_name>/``.

    ``checkpoint`` containing a path separator is a file path (used as is). Otherwise the newest run folder matching
    ``load_run`` (default: any) is searched for the newest file matching the regex ``checkpoint``; without one,
    ``best_model.pt`` when ``prefer_best`` and present (evaluation, play, teacher), else the ``model_<it>.pt`` with
    the highest iteration (resuming).

    Raises:
        FileNotFoundError: naming what was searched for and where.
    """
    if checkpoint and (os.path.isfile(checkpoint) or os.sep in checkpoint):
        if not os.path.isfile(checkpoint):
            raise FileNotFoundError(f"Checkpoint file '{checkpoint}' does not exist.")
        return os.path.abspath(checkpoint)
    root = os.path.join(LOG_ROOT, experiment_name)
    runs = sorted(d for d in glob.glob(os.path.join(root, "*")) if os.path.isdir(d)
                  and (load_run is None or re.search(load_run, os.path.basename(d))))
    if not runs:
        raise FileNotFoundError(f"No run folder{f' matching {load_run!r}' if load_run else ''} in '{root}'. "
                                "Train first, or pass --checkpoint <file>.")
    files = os.listdir(runs[-1])
    if checkpoint:
        matches = [f for f in files if re.fullmatch(checkpoint, f)]
    elif prefer_best and "best_model.pt" in files:
        matches = ["best_model.pt"]
    else:
        matches = [f for f in files if re.fullmatch(r"model_\d+\.pt", f)]
    if not matches:
        raise FileNotFoundError(f"No checkpoint {checkpoint or 'best_model.pt / model_<it>.pt'} in '{runs[-1]}'.")
    return os.path.abspath(os.path.join(runs[-1], max(matches, key=_iteration_order)))
