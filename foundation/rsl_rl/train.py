"""Train a policy with rsl-rl: a PPO teacher (``--task point_ctrl``) or a DAgger student (``--task distillation``).

    python foundation/rsl_rl/train.py --task point_ctrl [--num_envs N] [--max_iterations K] [overrides...]
    python foundation/rsl_rl/train.py --task distillation [--checkpoint <teacher.pt>]
    python foundation/rsl_rl/train.py --task point_ctrl --eval_only --checkpoint <model.pt>

Writes ``logs/rsl_rl/<experiment>/<timestamp>[_<run_name>]/`` with ``params/{env,agent}.yaml``, checkpoints
(``model_<it>.pt``, ``best_model.pt``), TensorBoard events; prints a deterministic evaluation at the end.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time

if __package__ in (None, ""):  # run as a script: make the repository importable without installation
    sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

from foundation.envs import RslRlVecEnvWrapper
from foundation.rsl_rl import cli
from foundation.rsl_rl.dagger import DAgger
from foundation.rsl_rl.evaluation import evaluate
from foundation.rsl_rl.runner import RUNNERS, CheckpointError
from foundation.rsl_rl.runner_cfg import to_rsl_rl_dict
from foundation.tasks import make_env
from foundation.utils.config import save_yaml


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    cli.add_common_args(parser)
    parser.add_argument("--max_iterations", type=int, help="Learning iterations (agent.max_iterations).")
    parser.add_argument("--logger", choices=["tensorboard", "wandb"], help="Logging backend (agent.logger).")
    parser.add_argument("--log_project_name", help="wandb project (agent.log_project_name).")
    parser.add_argument("--run_name", help="Suffix of the run folder (agent.run_name).")
    parser.add_argument("--resume", action="store_true", help="Resume from --load_run/--checkpoint of this task.")
    parser.add_argument("--eval_only", action="store_true", help="Only evaluate --checkpoint, then exit.")
    return parser.parse_intermixed_args(argv)  # overrides may sit between flags


def build_env(task: str, env_cfg, num_envs: int | None = None) -> RslRlVecEnvWrapper:
    """The wrapped env of ``task``; ``num_envs`` makes an evaluation copy of the training env (``evaluate`` reseeds
    it for every evaluation)."""
    cfg = copy.deepcopy(env_cfg)
    if num_envs is not None:
        cfg.scene.num_envs = num_envs
    return RslRlVecEnvWrapper(make_env(task, cfg))


def main(argv: list[str] | None = None) -> dict:
    """Run training (or evaluation); returns ``{"log_dir", "eval", "checkpoint"}`` (the evaluated checkpoint) for
    scripts and tests."""
    args = parse_args(argv)
    env_cfg, agent_cfg = cli.resolve_cfgs(args, {
        "agent.max_iterations": args.max_iterations, "agent.logger": args.logger,
        "agent.log_project_name": args.log_project_name, "agent.run_name": args.run_name})
    cli.setup_torch(agent_cfg)
    if agent_cfg.logger == "wandb" and not os.environ.get("WANDB_API_KEY") and not os.path.exists(
            os.path.expanduser("~/.netrc")):
        os.environ.setdefault("WANDB_MODE", "offline")
        print("[info] No wandb API key configured: wandb runs offline (sync later with `wandb sync`).")

    checkpoint = None
    if args.eval_only or args.resume:
        try:
            checkpoint = cli.find_checkpoint(agent_cfg.experiment_name, args.load_run, args.checkpoint,
                                             prefer_best=not args.resume)
        except FileNotFoundError as err:
            raise SystemExit(f"error: {err}") from None

    if agent_cfg.runner_class_name == "DistillationRunner" and checkpoint is None:
        try:  # the teacher: --checkpoint, else the newest run of the teacher's experiment
            checkpoint = cli.find_checkpoint(agent_cfg.teacher_experiment_name, args.load_run, args.checkpoint)
        except FileNotFoundError as err:
            raise SystemExit(f"error: no teacher checkpoint: {err}") from None
        print(f"[info] Teacher: {checkpoint}")

    if args.eval_only:
        cli.without_dataset(agent_cfg, env_cfg.scene.num_envs)
    env = build_env(args.task, env_cfg)
    runner_cls = RUNNERS[agent_cfg.runner_class_name]
    runner_cls.allow_unsafe_checkpoint = args.allow_unsafe_checkpoint
    runner = runner_cls(env, to_rsl_rl_dict(agent_cfg), log_dir=None, device=agent_cfg.device)
    if isinstance(runner.alg, DAgger):
        runner.alg.restore_buffer = args.resume  # a saved DAgger dataset is reloaded only to go on training
    if checkpoint:
        print(f"[info] Loading checkpoint {checkpoint}")
        try:
            runner.load(checkpoint, map_location=agent_cfg.device)
        except (CheckpointError, RuntimeError, ValueError) as err:
            raise SystemExit(f"error: {err}") from None
    log_dir = None
    if not args.eval_only:  # the run folder is created only once every input has been checked
        log_dir = runner.logger.log_dir = cli.new_run_dir(agent_cfg.experiment_name, agent_cfg.run_name)
        save_yaml(env_cfg, os.path.join(log_dir, "params", "env.yaml"))
        save_yaml(agent_cfg, os.path.join(log_dir, "params", "agent.yaml"))
        print(f"[info] Logging to {log_dir}")

    ev = agent_cfg.eval
    if not args.eval_only:
        runner.add_git_repo_to_log(__file__)
        if ev.interval > 0:
            runner.attach_evaluation(build_env(args.task, env_cfg, ev.num_episodes), ev.interval,
                                     seed=agent_cfg.seed + 1, distance_weight=ev.distance_weight)
        start = time.time()
        runner.learn(agent_cfg.max_iterations, init_at_random_ep_len=True)
        print(f"[info] Training took {time.time() - start:.1f} s")
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
    main()
