"""Try bad inputs against train.py and play.py, as a new user and a hostile tester would, and print what each gets.

    python scripts/try_bad_inputs.py [--out table.md]

Every try runs the real script in a subprocess (16 environments, tiny runs) with its own temporary log root; a
tiny teacher and student are trained first so that checkpoints of both kinds exist. For each try the table gives the
exit status and the message (from the first ``error:`` line of stderr on; home and temporary paths shortened); the summary counts
tracebacks (a user mistake must never show one), silent acceptances (a bad input that exits 0), and whether the
default lookups (play, ``--eval_only``, the teacher) still find the good runs afterwards. Takes a few minutes.
"""

from __future__ import annotations

import argparse
import glob
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN = os.path.join(REPO, "foundation", "rsl_rl", "train.py")
PLAY = os.path.join(REPO, "foundation", "rsl_rl", "play.py")
TINY = ["--num_envs", "16", "env.episode_length_s=1.0", "agent.num_steps_per_env=8", "agent.eval.interval=0",
        "agent.eval.final_num_episodes=16"]
PPO = ["--task", "point_ctrl", *TINY]
DIS = ["--task", "distillation", *TINY, "agent.algorithm.phase1_iterations=1", "agent.algorithm.max_buffer_size=1024"]


def run(script: str, argv: list[str], env: dict, timeout: float = 180) -> tuple[int, str, float]:
    start = time.time()
    proc = subprocess.run([sys.executable, script, *argv], env=env, capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stderr, time.time() - start


def tries(tmp: str, teacher: str, student: str) -> list[tuple[str, str, str, list[str], dict]]:
    """``(group, label, script, argv, extra env)``; every one is a mistake that must fail with a clear line."""
    text, rand, empty, trunc = (os.path.join(tmp, n) for n in ("notes.pt", "random.pt", "empty.pt", "half.pt"))
    return [
        *[("flags and overrides", label, TRAIN, [*PPO, *args], {}) for label, args in [
            ("unknown task", ["--task", "point_ctr"]),
            ("misspelt key", ["env.scene.num_env=8"]),
            ("wrong type", ["agent.algorithm.learning_rate=abc"]),
            ("unknown root", ["foo.bar=1"]),
            ("+key override", ["+agent.foo=1"]),
            ("--num_envs 0", ["--num_envs", "0"]),
            ("--num_envs -5", ["--num_envs", "-5"]),
            ("--num_envs 10000000", ["--num_envs", "10000000"]),
            ("sim.dt=0", ["env.sim.dt=0"]),
            ("sim.dt=-0.01", ["env.sim.dt=-0.01"]),
            ("decimation=0", ["env.decimation=0"]),
            ("episode shorter than a step", ["env.episode_length_s=0.001"]),
            ("env_spacing=-1", ["env.scene.env_spacing=-1"]),
            ("inverted latency range, negative payload", ["env.robot.latency_steps_range=[3,0]",
                                                        "env.robot.payload_range_kg=[-0.01,0.0]"]),
            ("negative gust rate", ["env.gusts.rate_hz=-1"]),
            ("negative learning rate", ["agent.algorithm.learning_rate=-1e-3"]),
            ("learning rate nan", ["agent.algorithm.learning_rate=nan"]),
            ("learning rate inf", ["agent.algorithm.learning_rate=inf"]),
            ("gamma=2", ["agent.algorithm.gamma=2"]),
            ("lam=-0.1", ["agent.algorithm.lam=-0.1"]),
            ("clip_param=0", ["agent.algorithm.clip_param=0"]),
            ("num_mini_batches=0", ["agent.algorithm.num_mini_batches=0"]),
            ("num_mini_batches=3 (does not divide)", ["agent.algorithm.num_mini_batches=3"]),
            ("num_learning_epochs=0", ["agent.algorithm.num_learning_epochs=0"]),
            ("empty hidden_dims", ["agent.actor.hidden_dims=[]"]),
            ("hidden_dims=[0]", ["agent.critic.hidden_dims=[0]"]),
            ("unknown activation", ["agent.actor.activation=relux"]),
            ("init_std=0", ["agent.actor.distribution_cfg.init_std=0"]),
            ("save_interval=0", ["agent.save_interval=0"]),
            ("num_steps_per_env=0", ["agent.num_steps_per_env=0"]),
            ("torch_threads=0", ["agent.torch_threads=0"]),
            ("max_iterations=0", ["--max_iterations", "0"]),
            ("max_iterations=-3", ["--max_iterations", "-3"]),
            ("seed=-1", ["--seed", "-1"]),
            ("eval.num_episodes=0", ["agent.eval.num_episodes=0"]),
            ("eval.interval=-1", ["agent.eval.interval=-1"]),
            ("obs_groups without critic", ["agent.obs_groups={actor:[teacher]}"]),
            ("obs_groups unknown group", ["agent.obs_groups={actor:[teacher],critic:[privileged]}"]),
            ("cuda without a GPU", ["--device", "cuda:0"]),
            ("--resume with --eval_only", ["--resume", "--eval_only"]),
        ]],
        *[("distributed", label, TRAIN, [*PPO, *args], env) for label, args, env in [
            ("--distributed without torchrun", ["--distributed"], {}),
            ("torchrun's variables without --distributed", [], {"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0"}),
            ("--distributed with --eval_only", ["--distributed", "--eval_only"], {}),
        ]],
        *[("distillation config", label, TRAIN, [*DIS, "--max_iterations", "5", *args], {}) for label, args in [
            ("phase1_iterations > max_iterations", ["agent.algorithm.phase1_iterations=30"]),
            ("buffer smaller than one env step", ["agent.algorithm.max_buffer_size=8"]),
            ("beta_decay_rate=1.5", ["agent.algorithm.beta_decay_rate=1.5"]),
            ("beta_schedule=cosine", ["agent.algorithm.beta_schedule=cosine"]),
            ("batch_size=0", ["agent.algorithm.batch_size=0"]),
            ("burn_in=-1", ["agent.algorithm.burn_in=-1"]),
            ("obs_groups without teacher", ["agent.obs_groups={student:[policy]}"]),
        ]],
        *[("paths and names", label, TRAIN, [*PPO, *args], {}) for label, args in [
            ("experiment_name=../../x", ["agent.experiment_name=../../x"]),
            ("experiment_name with /", ["agent.experiment_name=a/b"]),
            ("--run_name a/b", ["--run_name", "a/b"]),
            ("--run_name ..", ["--run_name", ".."]),
            ("--load_run not a regex", ["--eval_only", "--load_run", "("]),
            ("--load_run matching nothing", ["--eval_only", "--load_run", "nothing_like_this"]),
        ]],
        *[("checkpoints", label, script, args, {}) for label, script, args in [
            ("missing file", TRAIN, [*PPO, "--eval_only", "--checkpoint", os.path.join(tmp, "nope", "model.pt")]),
            ("directory", TRAIN, [*PPO, "--eval_only", "--checkpoint", tmp]),
            ("text file", TRAIN, [*PPO, "--eval_only", "--checkpoint", text]),
            ("random bytes", TRAIN, [*PPO, "--eval_only", "--checkpoint", rand]),
            ("random bytes, --allow_unsafe_checkpoint", TRAIN,
             [*PPO, "--eval_only", "--checkpoint", rand, "--allow_unsafe_checkpoint"]),
            ("empty file", TRAIN, [*PPO, "--eval_only", "--checkpoint", empty]),
            ("truncated checkpoint", TRAIN, [*PPO, "--eval_only", "--checkpoint", trunc]),
            ("teacher as student (--eval_only)", TRAIN, [*DIS, "--eval_only", "--checkpoint", teacher]),
            ("student as PPO policy (--eval_only)", TRAIN, [*PPO, "--eval_only", "--checkpoint", student]),
            ("student as teacher", TRAIN, [*DIS, "--max_iterations", "1", "--checkpoint", student]),
            ("teacher run resumed as distillation", TRAIN, [*DIS, "--resume", "--checkpoint", teacher]),
            ("finished run resumed without more iterations", TRAIN, ["--task", "point_ctrl", "--resume"]),
            ("play: teacher as student", PLAY, ["--task", "distillation", "--no_video", "--checkpoint", teacher]),
            ("play: student as PPO policy", PLAY, ["--task", "point_ctrl", "--no_video", "--checkpoint", student]),
            ("play: text file", PLAY, ["--task", "point_ctrl", "--no_video", "--checkpoint", text]),
            ("play: directory", PLAY, ["--task", "point_ctrl", "--no_video", "--checkpoint", tmp]),
            ("play: --num_envs 0", PLAY, ["--task", "point_ctrl", "--no_video", "--num_envs", "0"]),
        ]],
        ("secrets and network", "wandb with a key, no network", TRAIN, [*PPO, "--logger", "wandb"],
         {"WANDB_API_KEY": "f" * 40}),
    ]


def make_bad_files(tmp: str, teacher: str) -> None:
    with open(os.path.join(tmp, "notes.pt"), "w") as f:
        f.write("these are my notes, not a checkpoint\n")
    with open(os.path.join(tmp, "random.pt"), "wb") as f:
        f.write(random.Random(0).randbytes(4096))
    open(os.path.join(tmp, "empty.pt"), "wb").close()
    data = open(teacher, "rb").read()
    with open(os.path.join(tmp, "half.pt"), "wb") as f:
        f.write(data[: len(data) // 2])


def kill_tries(env: dict, root: str) -> list[str]:
    """SIGKILL three real training runs at random moments; return the problems found (unloadable checkpoints)."""
    import torch

    problems = []
    rng = random.Random(1)
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, TRAIN, *PPO, "--max_iterations", "500", "agent.save_interval=1"],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(3.0, 8.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    for path in glob.glob(os.path.join(root, "*", "*", "*.pt")):
        try:
            torch.load(path, weights_only=True)
        except Exception as err:  # noqa: BLE001
            problems.append(f"{path}: {err}")
    return problems


def shorten(message: str, tmp: str) -> str:
    return message.replace(tmp, "<tmp>").replace(REPO, "<repo>").replace("|", "\\|")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", help="Also write the table (markdown) to this file.")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="bad_inputs_")
    root = os.path.join(tmp, "logs")
    env = {**os.environ, "FOUNDATION_LOG_ROOT": root, "PYTHONPATH": REPO, "WANDB_INIT_TIMEOUT": "10"}
    env.pop("WANDB_API_KEY", None)
    try:
        rc, err, _ = run(TRAIN, [*PPO, "--max_iterations", "1"], env)
        assert rc == 0, err
        teacher = glob.glob(os.path.join(root, "point_ctrl", "*", "model_0.pt"))[0]
        rc, err, _ = run(TRAIN, [*DIS, "--max_iterations", "1"], env)
        assert rc == 0, err
        student = glob.glob(os.path.join(root, "point_ctrl_distillation", "*", "model_0.pt"))[0]
        make_bad_files(tmp, teacher)

        rows, tracebacks, accepted = [], 0, 0
        for group, label, script, argv, extra in tries(tmp, teacher, student):
            rc, err, seconds = run(script, argv, {**env, **extra})
            lines = [ln.strip() for ln in err.strip().splitlines() if ln.strip()]
            first = next((i for i, ln in enumerate(lines) if ln.startswith("error:") or ": error:" in ln),
                         len(lines) - 1)
            message = " ".join(lines[first:]) or "(no message)"
            traceback = "Traceback" in err
            tracebacks += traceback
            accepted += rc == 0
            rows.append((group, label, os.path.basename(script), rc, shorten(message, tmp), traceback, seconds))
            print(f"[{rc}] {label}: {shorten(message, tmp)}", flush=True)
        kill_problems = kill_tries(env, root)

        # Do the default lookups still find the good runs (no run left behind that blocks them)?
        lookups = {
            "play point_ctrl": run(PLAY, ["--task", "point_ctrl", "--no_video", "--num_envs", "4",
                                          "env.episode_length_s=1.0"], env)[0],
            "train --eval_only": run(TRAIN, [*PPO, "--eval_only"], env)[0],
            "teacher lookup": run(TRAIN, [*DIS, "--max_iterations", "1"], env)[0],
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    table = ["| group | bad input | script | exit | message |", "|---|---|---|---|---|"]
    table += [f"| {g} | {label} | {s} | {rc} | {'TRACEBACK ' if tb else ''}{m} |"
              for g, label, s, rc, m, tb, _ in rows]
    summary = (f"\n{len(rows)} bad inputs: {tracebacks} tracebacks, {accepted} silently accepted (exit 0); "
               f"{len(rows) and max(r[6] for r in rows):.1f} s the slowest. 3 runs SIGKILLed at random moments: "
               f"{len(kill_problems)} unloadable checkpoints. Default lookups afterwards: "
               + ", ".join(f"{k} {'ok' if v == 0 else f'FAILED ({v})'}" for k, v in lookups.items()) + ".")
    text = "\n".join(table) + "\n" + summary
    print("\n" + text)
    for problem in kill_problems:
        print(f"  {problem}")
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
