"""Command-line handling shared by ``train.py`` and ``play.py``: Isaac Lab-style flags, Hydra-style overrides, runs.

Every flag is sugar for an override (``--num_envs 256`` is ``env.scene.num_envs=256``); flags apply first, then the
positional overrides, and the whole config is validated before any work starts. A user mistake ends the script with
one line on stderr and exit code 2 (:class:`UsageError`, see :func:`run_script`), never a traceback.

Runs live in ``<log root>/<experiment>/<timestamp>[_<run_name>]/``; the log root is ``--log_root``, else the
``FOUNDATION_LOG_ROOT`` environment variable (a relative path is taken from the working directory), else
``logs/rsl_rl`` in the project folder (the one holding ``setup.py``), whatever the working directory.
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import socket
import sys
from collections.abc import Callable
from datetime import datetime
from urllib.parse import urlparse

import gymnasium as gym
import torch

from foundation.rsl_rl.checkpoints import (KIND_OF_RUNNER, CheckpointError, check_checkpoint, is_complete_run,
                                           load_checkpoint, remove_stale_temporaries)
from foundation.rsl_rl.runner_cfg import validate_run_cfgs
from foundation.sim import check_device
from foundation.tasks import load_task_cfgs, registered_tasks
from foundation.utils.config import ConfigError, apply_overrides, diff, merge_dict

PROJECT_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
#: Seconds to wait for the wandb server before giving up (a key set without a network hung 104 s).
WANDB_CONNECT_TIMEOUT_S = 5.0


class UsageError(SystemExit):
    """A user mistake (bad flag, override, value, checkpoint or path): ``code`` is the one-line message;
    :func:`run_script` prints it and exits with status 2."""


def run_script(main: Callable[[], object]) -> None:
    """Run a script's ``main``: a :class:`UsageError` prints its message and exits with status 2."""
    try:
        main()
    except UsageError as err:
        print(err.code, file=sys.stderr)
        sys.exit(2)


def log_root() -> str:
    """The absolute log root (see the module docstring)."""
    root = os.environ.get("FOUNDATION_LOG_ROOT")
    if root:
        return os.path.abspath(root)
    if os.path.isfile(os.path.join(PROJECT_ROOT, "setup.py")):
        return os.path.join(PROJECT_ROOT, "logs", "rsl_rl")
    return os.path.abspath(os.path.join("logs", "rsl_rl"))  # an installed package: the working directory


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """Flags of both scripts: task, sizes, seed, device, checkpoint selection, log root, overrides."""
    parser.add_argument("--task", required=True, help=f"Task id: one of {', '.join(registered_tasks())}.")
    parser.add_argument("--num_envs", type=int, help="Number of environments (env.scene.num_envs).")
    parser.add_argument("--seed", type=int, help="Seed of torch and the environment (agent.seed, env.seed).")
    parser.add_argument("--device", help="Device of training and simulation, e.g. cpu or cuda:0.")
    parser.add_argument("--load_run", help="Run folder (regex) under <log root>/<experiment>/; default newest.")
    parser.add_argument("--checkpoint", help="Checkpoint file: a path, or a regex of a file in the run folder.")
    parser.add_argument("--log_root", help="Folder of all runs (default: $FOUNDATION_LOG_ROOT, else logs/rsl_rl "
                                           "in the project folder).")
    parser.add_argument("--allow_unsafe_checkpoint", action="store_true",
                        help="Allow checkpoints that need full unpickling (only for files you trust).")
    parser.add_argument("overrides", nargs="*", help="Config overrides, e.g. env.scene.num_envs=256 "
                                                     "agent.algorithm.learning_rate=3e-4.")


def resolve_cfgs(args: argparse.Namespace, extra: dict[str, object] | None = None, base=None,
                 check: bool = True):
    """The task's ``(env_cfg, agent_cfg)`` with flags and overrides applied (``env.seed`` defaults to ``agent.seed``).

    Args:
        args: Parsed flags (``task``, ``num_envs``, ``seed``, ``device``, ``log_root``, ``overrides``).
        extra: More ``key: value`` flag overrides (None values are not applied).
        base: ``(env_cfg, agent_cfg)`` to start from instead of the task's defaults (a resumed run's saved configs).
        check: Validate the result (ranges, cross-field rules, device).

    Raises:
        UsageError: on an unknown task, a bad override or an invalid config, all before anything is built.
    """
    if args.log_root:
        os.environ["FOUNDATION_LOG_ROOT"] = os.path.abspath(args.log_root)
    try:
        env_cfg, agent_cfg = base or load_task_cfgs(args.task)
    except ValueError as err:
        raise UsageError(f"error: {err}") from None
    flags = {"env.scene.num_envs": args.num_envs, "env.seed": args.seed, "agent.seed": args.seed,
             "env.sim.device": args.device, "agent.device": args.device, **(extra or {})}
    overrides = [f"{k}={v}" for k, v in flags.items() if v is not None] + list(args.overrides)
    try:
        cfgs = apply_overrides({"env": env_cfg, "agent": agent_cfg}, overrides)
    except ConfigError as err:
        raise UsageError(f"error: {err}") from None
    env_cfg, agent_cfg = cfgs["env"], cfgs["agent"]
    if env_cfg.seed is None:  # one --seed (agent.seed) seeds torch and the environment
        env_cfg.seed = agent_cfg.seed
    if not check:
        return env_cfg, agent_cfg
    try:
        validate_run_cfgs(env_cfg, agent_cfg)
        check_device(agent_cfg.device)
    except (ConfigError, ValueError) as err:
        raise UsageError(f"error: {err}") from None
    if env_cfg.sim.device != agent_cfg.device:
        raise UsageError(f"error: env.sim.device ({env_cfg.sim.device}) and agent.device "
                         f"({agent_cfg.device}) differ; use --device to set both.")
    return env_cfg, agent_cfg


def resume_cfgs(args: argparse.Namespace, checkpoint: str, extra: dict[str, object] | None = None):
    """The configs of the run that holds ``checkpoint`` (its ``params/env.yaml`` and ``params/agent.yaml``) with
    this command line's flags and overrides on top, validated; every change is printed as
    ``[resume] agent.max_iterations: 150 -> 300``.

    Raises:
        UsageError: if the run folder has no saved configs, they do not fit the task's config classes, or the
            result is invalid.
    """
    import yaml

    run_dir = os.path.dirname(checkpoint)
    defaults = load_task_cfgs(args.task)
    saved = []
    for name, cfg in zip(("env", "agent"), defaults):
        path = os.path.join(run_dir, "params", f"{name}.yaml")
        try:
            with open(path, encoding="utf-8") as f:
                data = yaml.safe_load(f)
            saved.append(merge_dict(cfg, data or {}, name))
        except OSError as err:
            raise UsageError(f"error: cannot resume: '{path}' cannot be read ({err.strerror}).") from None
        except (yaml.YAMLError, ConfigError) as err:
            raise UsageError(f"error: cannot resume: '{path}' does not fit task '{args.task}': "
                             f"{str(err).splitlines()[-1].strip()}") from None
    env_cfg, agent_cfg = resolve_cfgs(args, extra, base=tuple(saved))
    for line in diff(saved[0], env_cfg, "env") + diff(saved[1], agent_cfg, "agent"):
        print(f"[resume] {line}")
    return env_cfg, agent_cfg


def setup_torch(agent_cfg, rank: int = 0) -> None:
    """Seed torch with ``agent.seed + rank`` (``rank``: the process of a data-parallel job, so each draws its own
    random numbers) and, on the CPU, use ``agent.torch_threads`` threads (more oversubscribe a small CPU: DESIGN.md
    §3 measured PPO 30x slower with 2 threads on 2 cores)."""
    torch.manual_seed(agent_cfg.seed + rank)
    if agent_cfg.device == "cpu":
        torch.set_num_threads(agent_cfg.torch_threads)


#: The model configs of a runner config, by the key the checkpoint's saved ``agent_cfg`` holds them under.
MODEL_KEYS = ("actor", "critic", "student", "teacher")


def models_from_checkpoint(agent_cfg, checkpoint: str, as_teacher: bool = False, allow_unsafe: bool = False):
    """``agent_cfg`` with the model configs ``checkpoint`` was trained with (the ``agent_cfg`` saved in it), so a
    policy trained with other sizes (e.g. ``agent.student.rnn_hidden_dim=128``) builds and loads without repeating
    its overrides. With ``as_teacher`` (a distillation's teacher from a PPO checkpoint), ``agent_cfg.teacher``
    becomes the saved ``actor``. Every change is printed (``[info] model from the checkpoint: agent.student...``);
    a checkpoint without saved configs (not written by this package) leaves ``agent_cfg`` as it is.

    Raises:
        UsageError: if the checkpoint cannot be read or its saved model config does not fit ``agent_cfg``.
    """
    try:
        saved = (load_checkpoint(checkpoint, "cpu", allow_unsafe, mmap=True).get("run") or {}).get("agent_cfg")
    except CheckpointError as err:
        raise UsageError(f"error: {err}") from None
    if not isinstance(saved, dict):
        return agent_cfg
    pairs = [("teacher", "actor")] if as_teacher else [(k, k) for k in MODEL_KEYS]
    for key, saved_key in pairs:
        if hasattr(agent_cfg, key) and isinstance(saved.get(saved_key), dict):
            try:
                model = merge_dict(getattr(agent_cfg, key), saved[saved_key], f"agent.{key}")
            except ConfigError as err:
                raise UsageError(f"error: the model config saved in '{checkpoint}' does not fit: "
                                 f"{str(err).splitlines()[-1].strip()}") from None
            for line in diff(getattr(agent_cfg, key), model, f"agent.{key}"):
                print(f"[info] model from the checkpoint: {line}")
            setattr(agent_cfg, key, model)
    return agent_cfg


def without_dataset(agent_cfg, num_envs: int) -> None:
    """Shrink a distillation config's DAgger buffer to one env step (``num_envs`` transitions): playing or evaluating
    a policy needs no dataset, and the default one would preallocate hundreds of MiB. No-op for other configs."""
    if hasattr(getattr(agent_cfg, "algorithm", None), "max_buffer_size"):
        agent_cfg.algorithm.max_buffer_size = num_envs


def check_obs_groups(agent_cfg, env_groups: list[str]) -> None:
    """Every group named in ``agent.obs_groups`` is one the env provides.

    Raises:
        UsageError: naming the key, the unknown group and the env's groups.
    """
    bad = [f"agent.obs_groups.{s}={groups!r}: unknown group(s) {', '.join(g for g in groups if g not in env_groups)}"
           for s, groups in agent_cfg.obs_groups.items() if any(g not in env_groups for g in groups)]
    if bad:
        raise UsageError("error: " + "; ".join(bad) + f" (the env's observation groups: {', '.join(env_groups)}).")


def check_wandb(agent_cfg) -> None:
    """With ``logger=wandb``: run offline when no API key is configured; with a key, check that the wandb server
    answers within :data:`WANDB_CONNECT_TIMEOUT_S` before anything is built.

    Raises:
        SystemExit: one line naming the server and the ways out (offline mode, TensorBoard).
    """
    if agent_cfg.logger != "wandb":
        return
    if os.environ.get("WANDB_MODE") in ("offline", "disabled", "dryrun"):
        return
    if not os.environ.get("WANDB_API_KEY") and not os.path.exists(os.path.expanduser("~/.netrc")):
        os.environ["WANDB_MODE"] = "offline"
        print("[info] No wandb API key configured: wandb runs offline (sync later with `wandb sync`).")
        return
    url = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai"))
    host, port = url.hostname or "api.wandb.ai", url.port or (80 if url.scheme == "http" else 443)
    try:
        socket.create_connection((host, port), timeout=WANDB_CONNECT_TIMEOUT_S).close()
    except OSError as err:
        raise SystemExit(f"error: --logger wandb: cannot reach {host}:{port} ({err.strerror or err}). Set "
                         "WANDB_MODE=offline to log offline and `wandb sync` later, or use --logger tensorboard."
                         ) from None


def experiment_dir(experiment_name: str) -> str:
    """``<log root>/<experiment_name>``."""
    return os.path.join(log_root(), experiment_name)


def new_run_dir(experiment_name: str, run_name: str) -> str:
    """Create and return ``<log root>/<experiment>/<timestamp>[_<run_name>]`` (``_1``, ``_2``… if it exists);
    remove stale ``*.tmp`` files of earlier runs of the experiment (see :func:`remove_stale_temporaries`)."""
    name = datetime.now().strftime("%Y-%m-%d_%H-%M-%S") + (f"_{run_name}" if run_name else "")
    base = os.path.join(experiment_dir(experiment_name), name)
    os.makedirs(os.path.dirname(base), exist_ok=True)
    for tmp in remove_stale_temporaries(_run_folders(os.path.dirname(base))):
        print(f"[info] Removed a stale temporary file (an interrupted save): {tmp}")
    for suffix in itertools.chain([""], (f"_{i}" for i in itertools.count(1))):
        try:
            os.mkdir(base + suffix)
            return base + suffix
        except FileExistsError:
            continue
    raise AssertionError("unreachable")


def _run_folders(root: str) -> list[str]:
    return sorted(os.path.join(root, d) for d in os.listdir(root) if os.path.isdir(os.path.join(root, d))) \
        if os.path.isdir(root) else []


def _iteration_order(filename: str) -> tuple[int, str]:
    """Sort key: ``model_<it>.pt`` by iteration number, other names after equal iterations alphabetically."""
    match = re.fullmatch(r"model_(\d+)\.pt", filename)
    return (int(match.group(1)) if match else -1, filename)


def expected_checkpoint(runner_class_name: str, task: str) -> dict:
    """``check_checkpoint`` arguments for a checkpoint of ``task``'s own runner (kind and env class)."""
    return {"kind": KIND_OF_RUNNER[runner_class_name], "env_entry_point": gym.spec(task).entry_point}


def find_checkpoint(experiment_name: str, load_run: str | None, checkpoint: str | None,
                    prefer_best: bool = True, expect: dict | None = None, allow_unsafe: bool = False) -> str:
    """The checkpoint chosen by ``--load_run``/``--checkpoint`` under ``<log root>/<experiment_name>/``.

    ``checkpoint`` that names an existing path, or contains a path separator, is a file path (used as is).
    Otherwise run folders matching ``load_run`` (default: any) are searched, newest first, for the newest file
    matching the regex ``checkpoint``; without one, ``best_model.pt`` when ``prefer_best`` and present (evaluation,
    play, teacher), else the ``model_<it>.pt`` with the highest iteration (resuming). Incomplete run folders (no
    ``run.json``: killed before the first checkpoint, failed start) and runs without such a file are skipped, each
    with a printed line.

    Args:
        expect: ``check_checkpoint`` keyword arguments (``kind``, ``env_entry_point``, ``task``, ``role``): the
            chosen file must be such a checkpoint.

    Raises:
        UsageError: naming what was searched for and where, or why the file found is not the expected kind.
    """
    path = _pick_checkpoint(experiment_name, load_run, checkpoint, prefer_best)
    if expect is not None:
        try:
            check_checkpoint(path, allow_unsafe=allow_unsafe, **expect)
        except CheckpointError as err:
            raise UsageError(f"error: {err}") from None
    return path


def _pick_checkpoint(experiment_name: str, load_run: str | None, checkpoint: str | None, prefer_best: bool) -> str:
    if checkpoint and (os.path.exists(checkpoint) or os.sep in checkpoint or "/" in checkpoint):
        if os.path.isdir(checkpoint):
            raise UsageError(f"error: Checkpoint '{checkpoint}' is a directory, not a checkpoint file (pass a file "
                             "such as <run>/best_model.pt, or the run folder's name with --load_run).")
        if not os.path.isfile(checkpoint):
            raise UsageError(f"error: Checkpoint file '{checkpoint}' does not exist.")
        return os.path.abspath(checkpoint)
    for pattern, what in ((load_run, "--load_run"), (checkpoint, "--checkpoint")):
        if pattern:
            try:
                re.compile(pattern)
            except re.error as err:
                raise UsageError(f"error: {what} {pattern!r} is not a valid regular expression ({err}).") from None
    root = experiment_dir(experiment_name)
    runs = [d for d in _run_folders(root) if load_run is None or re.search(load_run, os.path.basename(d))]
    wanted = checkpoint or ("best_model.pt / model_<it>.pt" if prefer_best else "model_<it>.pt")
    for run in reversed(runs):
        if not is_complete_run(run):
            print(f"[info] Skipping incomplete run folder {run} (no completed checkpoint).")
            continue
        files = os.listdir(run)
        if checkpoint:
            matches = [f for f in files if re.fullmatch(checkpoint, f)]
        elif prefer_best and "best_model.pt" in files:
            matches = ["best_model.pt"]
        else:
            matches = [f for f in files if re.fullmatch(r"model_\d+\.pt", f)]
        if matches:
            return os.path.join(run, max(matches, key=_iteration_order))
        print(f"[info] Skipping run folder {run} (no {wanted}).")
    if not runs:
        raise UsageError(f"error: No run folder{f' matching {load_run!r}' if load_run else ''} in '{root}'. "
                         "Train first, or pass --checkpoint <file>.")
    raise UsageError(f"error: No complete run with {wanted} in '{root}' ({len(runs)} run folder(s) skipped). "
                     "Train first, or pass --checkpoint <file>.")


def prepare_resume_dir(checkpoint: str) -> str:
    """The run folder that holds ``checkpoint`` (a resumed run continues there), cleaned of ``*.tmp`` files left by
    the interrupted run."""
    run_dir = os.path.dirname(os.path.abspath(checkpoint))
    for tmp in remove_stale_temporaries([run_dir], min_age_s=0.0):
        print(f"[resume] Removed a temporary file of the interrupted run: {tmp}")
    return run_dir
