"""Train a policy with rsl-rl: a PPO teacher (``--task point_ctrl``) or a DAgger student (``--task distillation``).

    python foundation/rsl_rl/train.py --task point_ctrl [--num_envs N] [--max_iterations K] [overrides...]
    python foundation/rsl_rl/train.py --task distillation [--checkpoint <teacher.pt>]
    python foundation/rsl_rl/train.py --task point_ctrl --resume [--max_iterations K] [overrides...]
    python foundation/rsl_rl/train.py --task point_ctrl --eval_only --checkpoint <model.pt>
    torchrun --nproc_per_node=K foundation/rsl_rl/train.py --task point_ctrl --distributed [...]

Writes ``<log root>/<experiment>/<timestamp>[_<run_name>]/`` (see ``cli``) with ``params/{env,agent}.yaml``,
checkpoints (``model_<it>.pt``, ``best_model.pt``), ``run.json`` (written with the first checkpoint: the run is
complete), TensorBoard events; prints a deterministic evaluation at the end. ``--resume`` continues a run in its own
folder from its saved configs (command-line overrides on top, each change printed) and full training state, up to
``max_iterations`` iterations in all. ``--distributed`` (under torchrun) trains data-parallel: every process runs
``num_envs`` environments, rank 0 alone writes the run folder and evaluates (see ``distributed``).
"""

from __future__ import annotations

import argparse
import copy
import os
import shutil
import sys
import time

if __package__ in (None, ""):  # run as a script: make the repository importable without installation
    sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

import gymnasium as gym
import torch.distributed as dist

from foundation.envs import RslRlVecEnvWrapper
from foundation.rsl_rl import cli, distributed
from foundation.rsl_rl.checkpoints import RUN_MARKER, CheckpointError, CheckpointWriteError, load_checkpoint
from foundation.rsl_rl.evaluation import evaluate
from foundation.rsl_rl.runner import RUNNERS, LoggerStartError
from foundation.rsl_rl.runner_cfg import to_rsl_rl_dict
from foundation.tasks import make_env
from foundation.utils.config import save_yaml, to_dict

#: Above this many environments, say that building the scene takes a while (MuJoCo C compiles one model holding
#: every copy: ~15 s for 4096 quadrotors on the reference CPU, superlinear in the count).
MANY_ENVS = 4096


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    cli.add_common_args(parser)
    parser.add_argument("--max_iterations", type=int, help="Learning iterations of the whole run, a resumed run's "
                                                           "earlier ones included (agent.max_iterations).")
    parser.add_argument("--logger", choices=["tensorboard", "wandb"], help="Logging backend (agent.logger).")
    parser.add_argument("--log_project_name", help="wandb project (agent.log_project_name).")
    parser.add_argument("--run_name", help="Suffix of the run folder (agent.run_name).")
    parser.add_argument("--resume", action="store_true", help="Continue a run (--load_run/--checkpoint; default "
                                                              "the newest complete run) in its folder.")
    parser.add_argument("--eval_only", action="store_true", help="Only evaluate --checkpoint, then exit.")
    parser.add_argument("--distributed", action="store_true", help="Data-parallel training in the processes "
                        "started by torchrun (num_envs per process; NCCL on CUDA, one GPU per process; Gloo on CPU).")
    args = parser.parse_intermixed_args(argv)  # overrides may sit between flags
    if args.resume and args.eval_only:
        parser.error("--resume and --eval_only exclude each other")
    if args.distributed and args.eval_only:
        parser.error("--eval_only runs in one process: launch it with python, without torchrun and --distributed")
    return args


def build_env(task: str, env_cfg, num_envs: int | None = None) -> RslRlVecEnvWrapper:
    """The wrapped env of ``task``; ``num_envs`` makes an evaluation copy of the training env (``evaluate`` reseeds
    it for every evaluation)."""
    cfg = copy.deepcopy(env_cfg)
    if num_envs is not None:
        cfg.scene.num_envs = num_envs
    return RslRlVecEnvWrapper(make_env(task, cfg))


def resolve(args: argparse.Namespace):
    """``(env_cfg, agent_cfg, checkpoint)``: validated configs (a resumed run's saved ones with this command line on
    top) and the checkpoint to load (resume, evaluation, or a distillation's teacher), checked to be of the right
    kind and task.

    Raises:
        UsageError: on any bad input, before anything is built or written.
    """
    extra = {"agent.max_iterations": args.max_iterations, "agent.logger": args.logger,
             "agent.log_project_name": args.log_project_name, "agent.run_name": args.run_name}
    env_cfg, agent_cfg = cli.resolve_cfgs(args, extra, check=not args.resume)
    own = cli.expected_checkpoint(agent_cfg.runner_class_name, args.task)
    checkpoint = None
    if args.resume:
        checkpoint = cli.find_checkpoint(agent_cfg.experiment_name, args.load_run, args.checkpoint, prefer_best=False,
                                         expect={**own, "task": args.task, "role": f"run to resume ({args.task})"},
                                         allow_unsafe=args.allow_unsafe_checkpoint)
        print(f"[resume] Continuing {checkpoint}")
        env_cfg, agent_cfg = cli.resume_cfgs(args, checkpoint, extra)
    elif args.eval_only:
        checkpoint = cli.find_checkpoint(agent_cfg.experiment_name, args.load_run, args.checkpoint,
                                         expect={**own, "role": f"policy of task '{args.task}'"},
                                         allow_unsafe=args.allow_unsafe_checkpoint)
        agent_cfg = cli.models_from_checkpoint(agent_cfg, checkpoint, allow_unsafe=args.allow_unsafe_checkpoint)
    elif agent_cfg.runner_class_name == "DistillationRunner":  # the teacher: --checkpoint, else the newest run
        try:
            checkpoint = cli.find_checkpoint(
                agent_cfg.teacher_experiment_name, args.load_run, args.checkpoint,
                expect={"kind": "ppo", "env_entry_point": own["env_entry_point"], "role": "teacher"},
                allow_unsafe=args.allow_unsafe_checkpoint)
        except cli.UsageError as err:
            raise cli.UsageError(f"error: no teacher checkpoint: {str(err.code).removeprefix('error: ')}") from None
        print(f"[info] Teacher: {checkpoint}")
        agent_cfg = cli.models_from_checkpoint(agent_cfg, checkpoint, as_teacher=True,
                                               allow_unsafe=args.allow_unsafe_checkpoint)
    return env_cfg, agent_cfg, checkpoint


def join_job(proc: distributed.ProcessInfo, env_cfg, agent_cfg) -> None:
    """Make this process one of a data-parallel job: its device (``cuda:<local_rank>`` on CUDA), its env seed
    (``env.seed + rank``), the process group, and a one-line exit when torchrun stops it. No-op for one process.

    Raises:
        cli.UsageError: if this node has fewer GPUs than processes.
    """
    if not proc.is_distributed:
        return
    try:
        device = distributed.process_device(proc, agent_cfg.device)
    except ValueError as err:
        raise cli.UsageError(f"error: {err}") from None
    env_cfg.sim.device = agent_cfg.device = device
    env_cfg.seed += proc.rank
    distributed.init_process_group(proc, device)
    distributed.stop_on_sigterm(proc)
    print(f"[distributed] rank {proc.rank} of {proc.world_size} (local rank {proc.local_rank}) on {device} "
          f"({distributed.backend(device)}): {env_cfg.scene.num_envs} envs, env seed {env_cfg.seed}, torch seed "
          f"{agent_cfg.seed + proc.rank}.", flush=True)


def main(argv: list[str] | None = None) -> dict:
    """Run training (or evaluation); returns ``{"log_dir", "eval", "checkpoint"}`` (the evaluated checkpoint) for
    scripts and tests. In a data-parallel job, ranks other than 0 return after training with ``eval`` and
    ``checkpoint`` None.

    Raises:
        cli.UsageError: on a user mistake (message in ``code``; exit status 2 from the command line).
        SystemExit: with a one-line message when a checkpoint cannot be written, wandb cannot be reached, or another
            process of a data-parallel job died.
    """
    args = parse_args(argv)
    try:
        proc = distributed.process_info(args.distributed)
    except ValueError as err:
        raise cli.UsageError(f"error: {err}") from None
    env_cfg, agent_cfg, checkpoint = resolve(args)
    if args.resume:
        start = int(load_checkpoint(checkpoint, "cpu", args.allow_unsafe_checkpoint, mmap=True)["iter"]) + 1
        if start >= agent_cfg.max_iterations:
            raise cli.UsageError(f"error: the run is complete: it trained {start} of agent.max_iterations="
                                 f"{agent_cfg.max_iterations} iterations; resume with --max_iterations > {start} "
                                 "to train further.")
    cli.check_wandb(agent_cfg)
    join_job(proc, env_cfg, agent_cfg)
    cli.setup_torch(agent_cfg, rank=proc.rank)
    if args.eval_only:
        cli.without_dataset(agent_cfg, env_cfg.scene.num_envs)
    if env_cfg.scene.num_envs > MANY_ENVS:
        print(f"[info] Building {env_cfg.scene.num_envs} environments: this can take minutes and much memory on "
              "the CPU (~15 s for 4096 quadrotors, growing faster than linearly).", flush=True)
    env = build_env(args.task, env_cfg)
    cli.check_obs_groups(agent_cfg, list(env.unwrapped.observation_sizes()))

    log_dir = None
    if args.resume and proc.is_main:
        log_dir = cli.prepare_resume_dir(checkpoint)
    elif not args.eval_only and proc.is_main:  # the run folder is created only once every input has been checked
        log_dir = cli.new_run_dir(agent_cfg.experiment_name, agent_cfg.run_name)
    log_dir = distributed.broadcast_object(log_dir, proc)  # created once, by rank 0
    run_info = {"task": args.task, "env_entry_point": gym.spec(args.task).entry_point,
                "experiment_name": agent_cfg.experiment_name, "env_cfg": to_dict(env_cfg),
                "agent_cfg": to_dict(agent_cfg)}
    runner = RUNNERS[agent_cfg.runner_class_name](
        env, to_rsl_rl_dict(agent_cfg), log_dir=log_dir, device=agent_cfg.device, run_info=run_info,
        allow_unsafe_checkpoint=args.allow_unsafe_checkpoint, log_git_diff=agent_cfg.log_git_diff)
    if checkpoint:
        print(f"[info] Loading checkpoint {checkpoint}")
        try:
            runner.load(checkpoint, map_location=agent_cfg.device, resume=args.resume)
        except (CheckpointError, RuntimeError, ValueError, KeyError) as err:
            if log_dir is not None and proc.is_main and not args.resume \
                    and not os.path.exists(os.path.join(log_dir, RUN_MARKER)):
                shutil.rmtree(log_dir, ignore_errors=True)  # the empty folder this run has just created
            raise cli.UsageError(f"error: cannot load '{checkpoint}': {err}") from None
    if log_dir is not None and proc.is_main:
        save_yaml(env_cfg, os.path.join(log_dir, "params", "env.yaml"))
        save_yaml(agent_cfg, os.path.join(log_dir, "params", "agent.yaml"))
        print(f"[info] Logging to {log_dir}")

    ev = agent_cfg.eval
    if not args.eval_only:
        runner.add_git_repo_to_log(__file__)
        if ev.interval > 0 and proc.is_main:
            runner.attach_evaluation(build_env(args.task, env_cfg, ev.num_episodes), ev.interval,
                                     seed=agent_cfg.seed + 1, distance_weight=ev.distance_weight)
        start = time.time()
        try:
            with distributed.exit_on_lost_peer(proc):
                runner.learn(agent_cfg.max_iterations - runner.current_learning_iteration, init_at_random_ep_len=True)
        except CheckpointWriteError as err:
            raise SystemExit(f"error: {err}") from None
        except LoggerStartError as err:
            if not args.resume:
                shutil.rmtree(log_dir, ignore_errors=True)  # nothing was trained in it yet
            raise SystemExit(f"error: {err}. Set WANDB_MODE=offline to log offline and `wandb sync` later, or "
                             "use --logger tensorboard.") from None
        print(f"[info] Training took {time.time() - start:.1f} s")
        if proc.is_distributed:
            with distributed.exit_on_lost_peer(proc):
                distributed.check_in_sync(runner.alg.save(), proc)
            dist.destroy_process_group()
            if not proc.is_main:
                return {"log_dir": log_dir, "eval": None, "checkpoint": None}
        best = os.path.join(log_dir, "best_model.pt")
        if os.path.exists(best):
            runner.load(best, map_location=agent_cfg.device)
            checkpoint = best
        else:
            checkpoint = os.path.join(log_dir, f"model_{runner.current_learning_iteration}.pt")

    final_env = build_env(args.task, env_cfg, ev.final_num_episodes)
    runner.alg.eval_mode()
    result = evaluate(runner.alg.get_policy(), final_env, seed=agent_cfg.seed + 2)
    print(f"[eval] {checkpoint}: {result}")
    return {"log_dir": log_dir, "eval": result, "checkpoint": checkpoint}


if __name__ == "__main__":
    cli.run_script(main)
