"""``play.py --usd``: the rollout of env 0 as a time-sampled USD stage whose transforms are MuJoCo's body poses.

The rollout runs in-process on the tiny teacher checkpoint of ``tests/conftest.py``; the test records env 0's body
pose (``sim.body_pos_w``, ``sim.body_quat_w``, env frame) after every env step by wrapping
``RslRlVecEnvWrapper.step`` (with ``mj_kinematics`` first: after ``mj_step``, ``xpos``/``xquat`` still hold the
pose before the step's integration), then compares it with the stage. The stage holds one prim per visible geom
(MuJoCo's exporter), so the body pose is recovered from a geom's sampled world transform and its fixed pose in the body
(``geom_pos``, ``geom_quat``). Tolerance 1e-6 m / 1e-6 (the exporter writes float64 matrices of float64 poses).
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pxr", reason="usd-core (pip install -e .) provides pxr")


def _pose_matrix(pos: np.ndarray, quat_wxyz: np.ndarray) -> np.ndarray:
    """(4, 4) homogeneous transform, column-vector convention."""
    import mujoco

    mat = np.zeros(9)
    mujoco.mju_quat2Mat(mat, np.asarray(quat_wxyz, np.float64))
    out = np.eye(4)
    out[:3, :3], out[:3, 3] = mat.reshape(3, 3), pos
    return out


def test_play_usd_samples_env0_body_poses(teacher_checkpoint, tmp_path, monkeypatch):
    import mujoco
    from pxr import Usd, UsdGeom

    from foundation.assets import asset_path
    from foundation.envs import RslRlVecEnvWrapper
    from foundation.rsl_rl.play import main

    poses = []  # env 0's body pose after each step, env frame
    inner_step = RslRlVecEnvWrapper.step

    def step_and_record(self, actions):
        out = inner_step(self, actions)
        sim = self.unwrapped.sim
        sim.kinematics()  # after mj_step, MuJoCo's xpos/xquat are those of the state before the last integration
        poses.append(((sim.body_pos_w[0, 0] - sim.env_origins[0]).double().numpy().copy(),
                      sim.body_quat_w[0, 0].double().numpy().copy()))  # copies: the tensors view MjData
        return out

    monkeypatch.setattr(RslRlVecEnvWrapper, "step", step_and_record)
    monkeypatch.chdir(tmp_path)
    num_frames = 6
    out = main(["--task", "point_ctrl", "--checkpoint", str(teacher_checkpoint), "--num_envs", "2", "--episodes",
                "2", "--no_video", "--usd", "--video_length", str(num_frames), "env.episode_length_s=1.0"])
    assert len(poses) >= num_frames - 1
    path = out["usd"]
    assert path.endswith(f"frames/frame_{num_frames}.usd") and str(teacher_checkpoint.parent / "usd") in path

    stage = Usd.Stage.Open(path)
    assert stage.GetTimeCodesPerSecond() == pytest.approx(50.0)  # 1 / step_dt (dt 0.01 s, decimation 2)
    model = mujoco.MjModel.from_xml_path(str(asset_path("crazyflie/cf2x.xml")))
    geom = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, "body")
    xform = UsdGeom.Xformable(stage.GetPrimAtPath(f"/World/Mesh_Xform_body_id{geom}_geom"))
    assert xform
    op = next(o for o in xform.GetOrderedXformOps() if o.GetOpType() == UsdGeom.XformOp.TypeTransform)
    assert op.GetTimeSamples() == list(range(num_frames))
    geom_in_body = _pose_matrix(model.geom_pos[geom], model.geom_quat[geom])
    for frame in (1, num_frames - 1):  # frame k: the state after step k
        world_geom = np.array(op.Get(frame)).T  # USD row-vector matrices
        body = world_geom @ np.linalg.inv(geom_in_body)
        pos, quat = poses[frame - 1]
        np.testing.assert_allclose(body, _pose_matrix(pos, quat), atol=1e-6, err_msg=f"frame {frame}")
