"""play.py (video, errors), policy export (TorchScript/ONNX round trip) and the training report, on tiny real runs.

Two session fixtures train a 2-iteration PPO teacher and a 2-iteration DAgger student (GRU) in a temporary folder;
everything else reuses them. The video test runs play.py in a subprocess with ``MUJOCO_GL=egl``, because the OpenGL
backend is fixed when ``mujoco`` is first imported (another test module may already have imported it).
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import torch

from tests.conftest import working_directory

REPO = pathlib.Path(__file__).resolve().parents[2]
#: Overrides that keep the training runs tiny (short episodes make the final evaluation fast).
TINY = ["env.episode_length_s=1.0", "agent.eval.interval=0", "agent.eval.final_num_episodes=16"]


@pytest.fixture(scope="session")
def teacher_run(tmp_path_factory) -> dict:
    """``train.main`` output of a 2-iteration PPO teacher of ``point_ctrl`` (16 envs)."""
    from foundation.rsl_rl.train import main

    root = tmp_path_factory.mktemp("play_runs")
    with working_directory(root):
        out = main(["--task", "point_ctrl", "--num_envs", "16", "--max_iterations", "2",
                    "agent.num_steps_per_env=8", *TINY])
    return {**out, "root": root}


@pytest.fixture(scope="session")
def student_run(teacher_run) -> dict:
    """``train.main`` output of a 2-iteration DAgger student (GRU; phase 2 from iteration 1) of that teacher."""
    from foundation.rsl_rl.train import main

    with working_directory(teacher_run["root"]):
        out = main(["--task", "distillation", "--checkpoint", teacher_run["checkpoint"], "--num_envs", "16",
                    "--max_iterations", "2", "agent.algorithm.phase1_iterations=1",
                    "agent.algorithm.max_buffer_size=4096", *TINY])
    return out


def _load_policy(task: str, checkpoint: str):
    """The deterministic policy of ``checkpoint`` (as play.py builds it) and the env's observation sizes."""
    from foundation.envs import RslRlVecEnvWrapper
    from foundation.rsl_rl.runner import RUNNERS
    from foundation.rsl_rl.runner_cfg import to_rsl_rl_dict
    from foundation.tasks import load_task_cfgs, make_env

    env_cfg, agent_cfg = load_task_cfgs(task)
    env_cfg.scene.num_envs, env_cfg.seed = 2, 0
    if hasattr(agent_cfg.algorithm, "max_buffer_size"):
        agent_cfg.algorithm.max_buffer_size = 2
    env = RslRlVecEnvWrapper(make_env(task, env_cfg))
    runner = RUNNERS[agent_cfg.runner_class_name](env, to_rsl_rl_dict(agent_cfg), log_dir=None)
    runner.load(checkpoint)
    runner.alg.eval_mode()
    return runner.alg.get_policy(), env.unwrapped.observation_sizes()


def _obs_dict(policy, sizes: dict[str, int], obs: torch.Tensor):
    """Split concatenated observations (B, D) into the policy's groups as a TensorDict."""
    from tensordict import TensorDict

    parts = torch.split(obs, [sizes[g] for g in policy.obs_groups], dim=1)
    return TensorDict(dict(zip(policy.obs_groups, parts)), batch_size=[obs.shape[0]])


# ----------------------------------------------------------------------------------------------------------- play
def test_play_video_has_video_length_frames(teacher_run):
    import imageio

    checkpoint = teacher_run["checkpoint"]
    cmd = [sys.executable, str(REPO / "foundation" / "rsl_rl" / "play.py"), "--task", "point_ctrl",
           "--checkpoint", checkpoint, "--num_envs", "4", "--episodes", "1", "--video", "--video_length", "12",
           "--video_envs", "2", "--video_width", "160", "--video_height", "96", "env.episode_length_s=1.0"]
    env = {**os.environ, "MUJOCO_GL": "egl"}
    proc = subprocess.run(cmd, cwd=teacher_run["root"], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    videos = sorted((pathlib.Path(checkpoint).parent / "videos").glob("play_*.mp4"))
    assert len(videos) == 1 and f"Video: {videos[0]}" in proc.stdout
    assert "success rate" in proc.stdout and "crash rate" in proc.stdout
    reader = imageio.get_reader(videos[0])
    frames = [frame for frame in reader.iter_data()]  # (list(reader) fails: its len() is inf)
    reader.close()
    assert len(frames) == 12
    assert all(f.shape == (96, 2 * 160, 3) for f in frames)
    assert max(f.std() for f in frames) > 5.0  # not a blank image


def test_play_missing_checkpoint_is_a_clear_error(tmp_path, monkeypatch):
    from foundation.rsl_rl.play import main

    monkeypatch.chdir(tmp_path)  # no logs/ here
    with pytest.raises(SystemExit, match="No run folder"):
        main(["--task", "point_ctrl", "--no_video"])
    with pytest.raises(SystemExit, match="does not exist"):
        main(["--task", "point_ctrl", "--no_video", "--checkpoint", str(tmp_path / "nothing" / "model_7.pt")])


def test_play_distillation_rejects_a_teacher_checkpoint(teacher_run, tmp_path, monkeypatch):
    from foundation.rsl_rl.play import main

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match="PPO \\(teacher\\) checkpoint.*student_state_dict"):
        main(["--task", "distillation", "--no_video", "--checkpoint", teacher_run["checkpoint"]])


def test_play_export_and_summary_without_video(teacher_run, tmp_path, monkeypatch):
    from foundation.rsl_rl.play import main

    monkeypatch.chdir(tmp_path)
    out = main(["--task", "point_ctrl", "--checkpoint", teacher_run["checkpoint"], "--num_envs", "4",
                "--episodes", "6", "--no_video", "--export", "env.episode_length_s=1.0"])
    assert out["result"].num_episodes == 6 and out["video"] is None
    exported = pathlib.Path(teacher_run["checkpoint"]).parent / "exported"
    assert {pathlib.Path(p).name for p in out["exported"].values()} >= {"policy.pt", "policy.onnx",
                                                                          "policy_io.json"}
    assert all(pathlib.Path(p).parent == exported for p in out["exported"].values())


# --------------------------------------------------------------------------------------------------------- export
@pytest.mark.filterwarnings("ignore:.*torch.jit.load.*:DeprecationWarning")
def test_export_mlp_actor_round_trip(teacher_run, tmp_path):
    import onnxruntime as ort

    from foundation.rsl_rl.export import export_policy

    policy, sizes = _load_policy("point_ctrl", teacher_run["checkpoint"])
    paths = export_policy(policy, str(tmp_path), sizes)
    io = json.loads(pathlib.Path(paths["io"]).read_text())
    assert io["obs_groups"] == [{"name": "teacher", "size": 41}] and io["action_size"] == 4
    assert io["recurrent"] is None and io["normalization_included"] is True

    obs = torch.randn(8, policy.obs_dim, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        expected = policy(_obs_dict(policy, sizes, obs)).numpy()
    session = ort.InferenceSession(paths["onnx"], providers=["CPUExecutionProvider"])
    (onnx_actions,) = session.run(None, {"obs": obs.numpy()})
    jit = torch.jit.load(paths["torchscript"])
    with torch.no_grad():
        jit_actions = jit(obs).numpy()
    np.testing.assert_allclose(onnx_actions, expected, atol=1e-5, rtol=0)
    np.testing.assert_allclose(jit_actions, expected, atol=1e-5, rtol=0)


@pytest.mark.filterwarnings("ignore:.*torch.jit.load.*:DeprecationWarning")
def test_export_gru_student_round_trip(student_run, tmp_path):
    import onnxruntime as ort

    from foundation.rsl_rl.export import export_policy

    policy, sizes = _load_policy("distillation", student_run["checkpoint"])
    assert policy.is_recurrent
    paths = export_policy(policy, str(tmp_path), sizes)
    io = json.loads(pathlib.Path(paths["io"]).read_text())
    rec = io["recurrent"]
    assert rec["type"] == "gru" and [i["name"] for i in io["onnx"]["inputs"]] == ["obs", "h_in"]
    assert [o["name"] for o in io["onnx"]["outputs"]] == ["actions", "h_out"]

    session = ort.InferenceSession(paths["onnx"], providers=["CPUExecutionProvider"])
    jit = torch.jit.load(paths["torchscript"])
    jit.reset()
    policy.reset()
    h = np.zeros((rec["num_layers"], 1, rec["hidden_size"]), dtype=np.float32)
    gen = torch.Generator().manual_seed(1)
    for _ in range(5):  # the hidden state is carried across steps, from zeros
        obs = torch.randn(1, policy.obs_dim, generator=gen)
        with torch.inference_mode():
            expected = policy(_obs_dict(policy, sizes, obs)).numpy()
        onnx_actions, h = session.run(None, {"obs": obs.numpy(), "h_in": h})
        with torch.no_grad():
            jit_actions = jit(obs).numpy()
        np.testing.assert_allclose(onnx_actions, expected, atol=1e-5, rtol=0)
        np.testing.assert_allclose(jit_actions, expected, atol=1e-5, rtol=0)
    assert np.abs(h).max() > 0  # the state did change


# --------------------------------------------------------------------------------------------------------- report
def test_report_of_a_distillation_run(student_run, tmp_path):
    import matplotlib.image

    from foundation.rsl_rl.report import plot_run

    report = plot_run(student_run["log_dir"], str(tmp_path / "report.png"))
    assert {"Mean reward", "Behavior loss", "Buffer fill"} <= set(report.panels)
    assert report.phase_switch == 1
    image = matplotlib.image.imread(report.path)
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 200


def test_report_script_default_path_and_missing_events(student_run, tmp_path):
    cmd = [sys.executable, str(REPO / "scripts" / "plot_run.py"), student_run["log_dir"]]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert (pathlib.Path(student_run["log_dir"]) / "report.png").is_file()
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "plot_run.py"), str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "No TensorBoard event file" in proc.stderr


def test_play_viewer_path_with_a_stub_viewer(teacher_run, tmp_path, monkeypatch):
    """With a display, play follows env 0 in mujoco.viewer.launch_passive (stubbed here: no display in CI)."""
    import mujoco
    import mujoco.viewer

    from foundation.rsl_rl.play import main

    calls = {"sync": 0}

    class StubHandle:
        def __init__(self, model, data):
            self.cam, self.user_scn = mujoco.MjvCamera(), mujoco.MjvScene(model, maxgeom=1000)
            self.data = data

        def lock(self):
            return contextlib.nullcontext()

        def sync(self):
            calls["sync"] += 1
            calls["ngeom"] = self.user_scn.ngeom
            calls["z"] = float(self.data.qpos[2])

        def is_running(self):
            return calls["sync"] < 10  # the user closes the window after 10 frames

        def close(self):
            calls["closed"] = True

    monkeypatch.setattr(mujoco.viewer, "launch_passive", lambda model, data, **kw: StubHandle(model, data))
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.chdir(tmp_path)
    out = main(["--task", "point_ctrl", "--checkpoint", teacher_run["checkpoint"], "--num_envs", "2",
                "--episodes", "100", "env.episode_length_s=1.0"])
    assert calls["sync"] == 10 and calls["closed"] and out["video"] is None
    assert calls["ngeom"] > 2  # ground grid and goal marker drawn
    assert 0.0 < calls["z"] < 3.0  # env 0's state was copied in


# ------------------------------------------------------------------------------------------------------ figure-8
def test_figure8_shape_and_tracking_statistics():
    from foundation.rsl_rl.trajectories import Figure8, TrackingErrors

    fig8 = Figure8(amplitude_m=1.0, period_s=8.0, height_m=1.2)
    p = fig8(torch.tensor([0.0, 2.0, 4.0, 1.0]))
    expected = torch.tensor([[0.0, 0.0, 1.2], [1.0, 0.0, 1.2], [0.0, 0.0, 1.2],
                             [2 ** -0.5, 0.5, 1.2]])
    torch.testing.assert_close(p, expected, atol=1e-6, rtol=0)
    path = fig8.path(40)
    np.testing.assert_allclose(path[0], path[-1], atol=1e-6)
    with pytest.raises(ValueError, match="positive"):
        Figure8(period_s=0.0)

    errors = TrackingErrors()
    errors.add(torch.arange(10.0), torch.arange(10) >= 5)  # 5..9 kept
    errors.add(torch.tensor([100.0]), torch.tensor([False]))
    stats = errors.summary()
    assert stats["samples"] == 5 and stats["mean_m"] == 7.0 and stats["max_m"] == 9.0
    assert 8.7 < stats["p95_m"] < 9.0


def test_play_figure8_needs_the_tracking_hooks(teacher_run, tmp_path, monkeypatch):
    from foundation.rsl_rl.play import main
    from foundation.tasks.point_ctrl.point_ctrl_env import PointCtrlEnv

    monkeypatch.chdir(tmp_path)
    monkeypatch.delattr(PointCtrlEnv, "set_goal")
    with pytest.raises(SystemExit, match="--figure8 needs the task's public method.*set_goal"):
        main(["--task", "point_ctrl", "--checkpoint", teacher_run["checkpoint"], "--no_video", "--figure8"])


def test_play_figure8_reports_tracking_error(teacher_run, tmp_path, monkeypatch):
    from foundation.rsl_rl.play import main

    monkeypatch.chdir(tmp_path)
    out = main(["--task", "point_ctrl", "--checkpoint", teacher_run["checkpoint"], "--num_envs", "2",
                "--no_video", "--figure8", "--settle_time", "0.1", "env.episode_length_s=1.0"])
    tracking = out["tracking"]
    # The CLI wiring: a summary of samples taken after the settling time (5 of the 50 steps of each episode).
    assert set(tracking) == {"mean_m", "p95_m", "max_m", "samples"}
    assert 0 < tracking["samples"] <= 2 * (50 - 5)


def test_figure8_tracking_error_of_a_hovering_drone_is_its_distance_to_the_moving_goal():
    """A drone that hovers exactly where it starts, (0, 0, 1) (trim command, instantaneous rotors, nominal
    airframe without latency, payload, motor-strength spread or gusts, level start at rest), tracks a figure-8 at
    height 1 m: the error at episode time t is then
    |(A sin ωt, A sin ωt cos ωt)|, known by hand at every recorded step (t = 0.1 .. 0.98 s, after the settling
    time, before the episode ends)."""
    from foundation.envs import RslRlVecEnvWrapper
    from foundation.rsl_rl.play import rollout
    from foundation.rsl_rl.trajectories import Figure8
    from tests.conftest import make_point_ctrl_env
    from tests.tasks.test_point_ctrl_randomization import NEW_FACTORS_OFF

    env = RslRlVecEnvWrapper(make_point_ctrl_env(
        2, episode_length_s=1.0, robot__mass_range_kg=(0.027, 0.027), robot__thrust_to_weight_range=(2.25, 2.25),
        robot__motor_tau_s=1e-9, init__max_tilt_rad=0.0, init__max_lin_vel_mps=0.0, init__max_ang_vel_radps=0.0,
        **NEW_FACTORS_OFF))

    class Trim(torch.nn.Module):
        def forward(self, obs):
            return torch.full((2, 4), 2.0 / 2.25 - 1.0)

        def reset(self, dones=None):
            pass

    result, tracking = rollout(env, Trim(), episodes=2, figure8=Figure8(amplitude_m=1.5, period_s=4.0,
                                                                        height_m=1.0), settle_time=0.1)
    assert result.num_episodes == 2 and result.crash_rate == 0.0
    t = torch.arange(5, 50, dtype=torch.float64) * 0.02
    phase = 2 * np.pi / 4.0 * t
    expected = (1.5 * torch.sin(phase) * torch.sqrt(1 + torch.cos(phase) ** 2)).repeat(2)
    assert tracking["samples"] == len(expected) == 90
    assert tracking["mean_m"] == pytest.approx(expected.mean().item(), abs=1e-4)
    assert tracking["max_m"] == pytest.approx(expected.max().item(), abs=1e-4)
    assert tracking["p95_m"] == pytest.approx(np.percentile(expected.numpy(), 95), abs=1e-4)


@pytest.mark.filterwarnings("ignore:.*torch.jit.load.*:DeprecationWarning")
def test_export_gru_student_at_batch_three_and_after_reset(student_run, tmp_path):
    """ONNX with a dynamic batch of 3 robots, one of which starts a new episode mid-sequence (its h_in zeroed), and
    TorchScript's ``reset()`` after a few steps: both equal the PyTorch policy reset the same way, to 1e-5."""
    import onnxruntime as ort

    from foundation.rsl_rl.export import export_policy

    policy, sizes = _load_policy("distillation", student_run["checkpoint"])
    paths = export_policy(policy, str(tmp_path), sizes)
    io = json.loads(pathlib.Path(paths["io"]).read_text())
    assert io["onnx"]["inputs"][0]["shape"][0] == "batch"
    rec = io["recurrent"]
    session = ort.InferenceSession(paths["onnx"], providers=["CPUExecutionProvider"])
    gen = torch.Generator().manual_seed(2)
    obs_seq = [torch.randn(3, policy.obs_dim, generator=gen) for _ in range(6)]

    policy.reset()
    h = np.zeros((rec["num_layers"], 3, rec["hidden_size"]), dtype=np.float32)
    for t, obs in enumerate(obs_seq):
        if t == 3:  # robot 1 starts a new episode
            h[:, 1] = 0.0
            with torch.inference_mode():
                policy.reset(dones=torch.tensor([0, 1, 0]))
        with torch.inference_mode():
            expected = policy(_obs_dict(policy, sizes, obs)).numpy()
        onnx_actions, h = session.run(None, {"obs": obs.numpy(), "h_in": h})
        np.testing.assert_allclose(onnx_actions, expected, atol=1e-5, rtol=0)
    assert np.abs(h[:, 0] - h[:, 1]).max() > 1e-4  # the reset made a difference

    jit = torch.jit.load(paths["torchscript"])
    policy.reset()
    with torch.inference_mode():
        first = policy(_obs_dict(policy, sizes, obs_seq[0][:1])).numpy()
    with torch.no_grad():
        for obs in obs_seq[1:4]:
            jit(obs[:1])
        jit.reset()
        after_reset = jit(obs_seq[0][:1]).numpy()
        carried = jit(obs_seq[0][:1]).numpy()
    np.testing.assert_allclose(after_reset, first, atol=1e-5, rtol=0)
    assert np.abs(carried - first).max() > 1e-5  # without the reset the answer differs
