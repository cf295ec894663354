"""Play a trained policy: watch it (viewer or MP4), export it, and print how its episodes ended.

    python foundation/rsl_rl/play.py --task point_ctrl [--checkpoint <model.pt>] [--video] [--export] [overrides...]
    python foundation/rsl_rl/play.py --task distillation --video --video_envs 4      # the student of the newest run
    python foundation/rsl_rl/play.py --task point_ctrl --figure8 --video            # track a moving figure-8 goal

The checkpoint is ``--checkpoint`` (a file, or a regex of a file in the run folder), else the newest run of the task's
experiment (``best_model.pt``, else the last ``model_<it>.pt``), as in ``train.py``; the same flags and Hydra-style
overrides apply. The policy (PPO actor, or the distillation student) runs deterministically in ``--num_envs``
environments until ``--episodes`` episodes have ended, then a summary (success rate, crash rate, mean final error)
is printed.

Display: with a display (``DISPLAY`` set) and no ``--video``, an interactive MuJoCo viewer follows env 0 in real
time. Without a display, or with ``--video``, the first ``--video_length`` steps of the first ``--video_envs`` envs
are rendered offscreen side by side into ``<run_dir>/videos/play_<timestamp>.mp4`` (``run_dir``: the checkpoint's
folder); ``--no_video`` skips both. Offscreen rendering uses ``MUJOCO_GL=egl`` (set here, when unset, if there is
no display or ``--video`` is given); the software fallback is ``MUJOCO_GL=osmesa``, which needs the system package
``libosmesa6``.

``--usd`` also writes env 0's first ``--video_length`` steps as a time-sampled USD stage (MuJoCo's ``mujoco.usd``
exporter) into ``<run_dir>/usd/play_<timestamp>/`` (path printed; see ``foundation.rsl_rl.usd_export``).

``--export`` writes the policy as TorchScript and ONNX with ``policy_io.json`` into ``<run_dir>/exported/`` (see
``foundation.rsl_rl.export``). ``--figure8`` (tasks with ``set_goal``/``distance_to_goal``, e.g. point control)
moves the goal along a figure-8 and reports the tracking error after ``--settle_time`` seconds of each episode.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from datetime import datetime

if __package__ in (None, ""):  # run as a script: make the repository importable without installation
    sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
if not os.environ.get("DISPLAY") or "--video" in sys.argv[1:]:  # before anything imports mujoco
    os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym
import torch
from rsl_rl.utils import resolve_callable
from tqdm import tqdm

from foundation.envs import RslRlVecEnvWrapper
from foundation.rsl_rl import cli
from foundation.rsl_rl.evaluation import EvalResult
from foundation.rsl_rl.export import export_policy
from foundation.rsl_rl.rendering import PassiveViewer, VideoRecorder, camera_settings, env_markers
from foundation.rsl_rl.runner import RUNNERS, CheckpointError
from foundation.rsl_rl.runner_cfg import to_rsl_rl_dict
from foundation.rsl_rl.trajectories import Figure8, TrackingErrors
from foundation.rsl_rl.usd_export import UsdRolloutRecorder
from foundation.tasks import make_env

#: Task methods ``--figure8`` needs (see ``foundation.rsl_rl.trajectories``).
TRACKING_HOOKS = ("set_goal", "distance_to_goal")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse and check the command line (see the module docstring).

    Raises:
        SystemExit: on a non-positive count or size, or an odd video size.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    cli.add_common_args(parser)
    parser.add_argument("--episodes", type=int, help="Stop after this many finished episodes (default: num_envs).")
    parser.add_argument("--video", action="store_true", help="Record an MP4 offscreen, even with a display.")
    parser.add_argument("--no_video", action="store_true", help="Headless: run without viewer or video.")
    parser.add_argument("--video_length", type=int, default=500, help="Recorded policy steps (default 500).")
    parser.add_argument("--video_envs", type=int, default=4, help="Envs shown side by side (default 4).")
    parser.add_argument("--video_width", type=int, default=384, help="Width of each env's tile, pixels.")
    parser.add_argument("--video_height", type=int, default=288, help="Height of the video, pixels.")
    parser.add_argument("--camera_distance", type=float, help="Camera distance to the tracked body, m (default: env.viewer.distance_m, "
                        "else auto).")
    parser.add_argument("--usd", action="store_true", help="Record env 0's first --video_length steps as USD.")
    parser.add_argument("--export", action="store_true", help="Export TorchScript + ONNX to <run_dir>/exported/.")
    parser.add_argument("--figure8", action="store_true", help="Track a figure-8 goal (tasks with set_goal).")
    parser.add_argument("--figure8_amplitude", type=float, default=1.0, help="Figure-8 half length A, m.")
    parser.add_argument("--figure8_period", type=float, default=8.0, help="Figure-8 period, s.")
    parser.add_argument("--figure8_height", type=float, default=1.0, help="Figure-8 height z0, m.")
    parser.add_argument("--settle_time", type=float, default=2.0,
                        help="Tracking error is measured from this episode time on, s (default 2).")
    args = parser.parse_intermixed_args(argv)  # overrides may sit between flags
    if args.num_envs is None:
        args.num_envs = 16
    positive = {"--num_envs": args.num_envs, "--episodes": args.episodes, "--video_length": args.video_length,
                "--video_envs": args.video_envs, "--video_width": args.video_width,
                "--video_height": args.video_height, "--figure8_period": args.figure8_period,
                "--figure8_amplitude": args.figure8_amplitude}
    bad = [f"{k} must be positive, got {v}" for k, v in positive.items() if v is not None and v <= 0]
    bad += [f"{k} must be even (H.264), got {v}" for k, v in
            (("--video_width", args.video_width), ("--video_height", args.video_height)) if v % 2]
    if args.settle_time < 0:
        bad.append(f"--settle_time must be >= 0, got {args.settle_time}")
    if args.video and args.no_video:
        bad.append("--video and --no_video exclude each other")
    if bad:
        parser.error("; ".join(bad))
    args.episodes = args.episodes or args.num_envs
    return args


def main(argv: list[str] | None = None) -> dict:
    """Play (see the module docstring).

    Returns:
        ``{"checkpoint": path, "result": EvalResult, "video": path | None, "exported": {name: path} | None,
        "tracking": {"mean_m", "p95_m", "max_m", "samples"} | None, "usd": path | None}``.

    Raises:
        SystemExit: with a message on bad flags, an unknown task, a missing or wrong checkpoint, or ``--figure8``
            on a task without the tracking hooks; all before the environment is built.
    """
    args = parse_args(argv)
    env_cfg, agent_cfg = cli.resolve_cfgs(args)
    figure8 = None
    if args.figure8:
        env_class = resolve_callable(gym.spec(args.task).entry_point)
        missing = [h for h in TRACKING_HOOKS if not callable(getattr(env_class, h, None))]
        if missing:
            raise cli.UsageError(f"error: --figure8 needs the task's public method(s) {', '.join(missing)} "
                             f"({env_class.__name__} of task '{args.task}' has not).")
        figure8 = Figure8(args.figure8_amplitude, args.figure8_period, args.figure8_height)
    checkpoint = cli.find_checkpoint(agent_cfg.experiment_name, args.load_run, args.checkpoint,
                                     expect={**cli.expected_checkpoint(agent_cfg.runner_class_name, args.task),
                                             "role": f"policy of task '{args.task}'"},
                                     allow_unsafe=args.allow_unsafe_checkpoint)
    print(f"[info] Checkpoint: {checkpoint}")
    agent_cfg = cli.models_from_checkpoint(agent_cfg, checkpoint, allow_unsafe=args.allow_unsafe_checkpoint)
    cli.without_dataset(agent_cfg, env_cfg.scene.num_envs)
    show_viewer = bool(os.environ.get("DISPLAY")) and not args.video and not args.no_video
    record = not show_viewer and not args.no_video

    cli.setup_torch(agent_cfg)
    env = RslRlVecEnvWrapper(make_env(args.task, env_cfg))
    cli.check_obs_groups(agent_cfg, list(env.unwrapped.observation_sizes()))
    runner = RUNNERS[agent_cfg.runner_class_name](env, to_rsl_rl_dict(agent_cfg), log_dir=None,
                                                  device=agent_cfg.device,
                                                  allow_unsafe_checkpoint=args.allow_unsafe_checkpoint)
    try:
        runner.load(checkpoint, map_location=agent_cfg.device)
    except (CheckpointError, RuntimeError, KeyError, ValueError) as err:
        raise SystemExit(f"error: cannot load '{checkpoint}' into the {args.task} policy: {err}") from None
    runner.alg.eval_mode()
    policy = runner.alg.get_policy()
    run_dir = os.path.dirname(checkpoint)

    exported = None
    if args.export:
        unwrapped = env.unwrapped
        exported = export_policy(policy, os.path.join(run_dir, "exported"), unwrapped.observation_sizes(), {
            "task": args.task, "checkpoint": checkpoint, "step_dt_s": unwrapped.step_dt,
            "action_clip": env.clip_actions})
        print("[export] " + ", ".join(f"{k}: {v}" for k, v in exported.items()))

    display, video = None, None
    if record:
        video_envs = min(args.video_envs, env.num_envs)
        video = _new_play_path(run_dir, "videos", ".mp4")
        display = VideoRecorder(env.unwrapped.sim, video, round(1.0 / env.unwrapped.step_dt), args.video_length,
                                list(range(video_envs)), args.video_width, args.video_height,
                                **camera_settings(env, args.camera_distance))
    elif show_viewer:
        display = PassiveViewer(env.unwrapped.sim, env.unwrapped.step_dt,
                                **camera_settings(env, args.camera_distance))
    played = UsdRolloutRecorder(env, _new_play_path(run_dir, "usd"), args.video_length) if args.usd else env
    try:
        result, tracking = rollout(played, policy, args.episodes, display, figure8, args.settle_time)
    finally:
        if display is not None:
            display.close()
    usd = played.save() if args.usd else None
    print_summary(checkpoint, result, tracking, args.settle_time, video, exported)
    if usd:
        print(f"[play] USD: {usd} ({played.frames} frames of env 0)")
    return {"checkpoint": checkpoint, "result": result, "video": video, "exported": exported,
            "tracking": tracking, "usd": usd}


@torch.inference_mode()
def rollout(env: RslRlVecEnvWrapper, policy: torch.nn.Module, episodes: int, display=None,
            figure8: Figure8 | None = None, settle_time: float = 2.0) -> tuple[EvalResult, dict | None]:
    """Run the deterministic ``policy`` until ``episodes`` episodes ended and ``display`` is done.

    Args:
        env: The wrapped env (already reset); its task reports ``extras["episode_outcomes"]``.
        policy: rsl-rl model mapping observations to (N, A) actions; its recurrent state is reset at every episode
            end.
        episodes: Finished episodes to collect, in rounds of one episode per env (see the comment in the code).
        display: A :class:`VideoRecorder` (the rollout also runs until it is done), a :class:`PassiveViewer`
            (the rollout stops early when its window is closed), or None.
        figure8: Moving goal, or None. Before each step the goal of the step's end time is written with
            ``set_goal``, so the observation returned by the step and the measured error (``distance_to_goal``)
            refer to the goal of the same instant; only the first action of an episode sees the goal sampled by
            the reset (within the settling time).
        settle_time: Tracking error is recorded once an episode has run this long, seconds.

    Returns:
        ``(EvalResult of the collected episodes, tracking-error summary or None)``.
    """
    task = env.unwrapped
    dt, n = task.step_dt, env.num_envs
    all_ids = torch.arange(n, device=env.device)
    path = figure8.path() if figure8 is not None else None
    errors = TrackingErrors() if figure8 is not None else None
    outcomes: dict[str, list[torch.Tensor]] = {"success": [], "crash": [], "final_distance": []}
    finished, step = 0, 0
    # Rounds of one episode per env (as evaluate() does): counting episodes in the order they end would favour
    # short ones (crashes). A round counts the first episode of envs 0..k-1 (k = episodes still wanted, at most n),
    # then every env is reset for the next round.
    eligible = torch.arange(n, device=env.device) < min(n, episodes)
    counted = torch.zeros(n, dtype=torch.bool, device=env.device)
    max_steps = math.ceil(episodes / n) * (int(env.max_episode_length) + 1)
    settle_steps = math.ceil(settle_time / dt - 1e-6)  # in whole steps: a float32 step count x dt rounds below
    is_video = isinstance(display, VideoRecorder)
    policy.reset()
    obs = env.get_observations()
    bar = tqdm(total=episodes, unit="episode", desc="play", dynamic_ncols=True)
    while finished < episodes or (is_video and not display.done):
        if display is not None:
            if not is_video and not display.is_running():
                break
            if figure8 is not None:  # show the goal of now (a reset has just sampled a random one)
                task.set_goal(all_ids, figure8(task.episode_length_buf * dt))
            markers = env_markers(task)
            if is_video:
                texts = _tile_texts(task, display.env_ids, dt, figure8 is not None)
                display.add_frame(markers, path, texts)
            else:
                display.show(markers, path)
        if figure8 is not None:  # the goal at the end of this step: what the next observation and error refer to
            task.set_goal(all_ids, figure8((task.episode_length_buf + 1) * dt))
        obs, _, dones, extras = env.step(policy(obs))
        policy.reset(dones)
        step += 1
        if errors is not None:
            errors.add(task.distance_to_goal(), (dones == 0) & (task.episode_length_buf >= settle_steps))
        new = extras.get("episode_outcomes")
        if new is not None and finished < episodes:
            take = eligible[new["env_ids"]] & ~counted[new["env_ids"]]
            for key in outcomes:
                outcomes[key].append(new[key][take].detach().cpu())
            counted[new["env_ids"][take]] = True
            finished += int(take.sum())
            bar.update(int(take.sum()))
            if counted[eligible].all() and finished < episodes:  # next round: fresh episodes everywhere
                eligible = torch.arange(n, device=env.device) < min(n, episodes - finished)
                counted.zero_()
                obs, _ = env.reset()
                policy.reset()
        if is_video:
            bar.set_postfix(step=step, video=f"{display.frames}/{display.num_frames}", refresh=False)
        if step >= max_steps and finished < episodes:
            print(f"\n[warn] Only {finished} of {episodes} episodes ended within {max_steps} steps (does the task "
                  "report extras['episode_outcomes']?).")
            break
    bar.close()
    return _eval_result(outcomes), errors.summary() if errors is not None else None


def _tile_texts(task, env_ids: list[int], dt: float, tracking: bool) -> dict[int, list[str]]:
    """Caption of each video tile: env id and episode time, plus the current tracking error."""
    t = (task.episode_length_buf * dt).tolist()
    dist = task.distance_to_goal().tolist() if tracking else None
    return {k: [f"env {k}  t={t[k]:.2f} s"] + ([f"tracking error {100 * dist[k]:.1f} cm"] if tracking else [])
            for k in env_ids}


def _eval_result(outcomes: dict[str, list[torch.Tensor]]) -> EvalResult:
    """:class:`EvalResult` of the collected outcomes."""
    if not outcomes["success"]:
        return EvalResult.from_outcomes(*(torch.zeros(0, dtype=torch.bool),) * 3)
    return EvalResult.from_outcomes(*(torch.cat(outcomes[k]) for k in ("success", "crash", "final_distance")))


def print_summary(checkpoint: str, result: EvalResult, tracking: dict | None, settle_time: float,
                  video: str | None, exported: dict | None) -> None:
    """Print the results as a table."""
    rows = [("episodes", f"{result.num_episodes}"), ("success rate", f"{100 * result.success_rate:.2f} %"),
            ("crash rate", f"{100 * result.crash_rate:.2f} %"),
            ("final error, mean (not crashed)", f"{100 * result.final_distance_m:.2f} cm")]
    if tracking is not None:
        rows += [(f"tracking error {k} (t >= {settle_time:g} s)", f"{100 * tracking[f'{k}_m']:.2f} cm")
                 for k in ("mean", "p95", "max")] + [("tracking samples (env steps)", f"{tracking['samples']}")]
    width = max(len(r[0]) for r in rows)
    print(f"\n[play] {checkpoint}")
    print("\n".join(f"  {name:<{width}} | {value:>10}" for name, value in rows))
    if video:
        print(f"[play] Video: {video}")
    if exported:
        print(f"[play] Exported to {os.path.dirname(exported['onnx'])}: "
              + ", ".join(os.path.basename(p) for p in exported.values()))


def _new_play_path(run_dir: str, folder: str, ext: str = "") -> str:
    """``<run_dir>/<folder>/play_<timestamp><ext>``, suffixed ``_<k>`` before ``ext`` if that path exists."""
    stem = os.path.join(run_dir, folder, "play_" + datetime.now().strftime("%Y-%m-%d_%H-%M-%S"))
    path, k = stem + ext, 1
    while os.path.exists(path):
        path, k = f"{stem}_{k}{ext}", k + 1
    return path


if __name__ == "__main__":
    cli.run_script(main)
