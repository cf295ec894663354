"""Record a played rollout as a time-sampled OpenUSD stage (``play.py --usd``), with MuJoCo's ``mujoco.usd`` exporter.

The MuJoCo C backend holds all N environments in one big model; a stage of all of them would be N robots on top of
each other (point control's ``env_spacing`` is 0). So one environment, ``env_id`` (env 0 in ``play.py``), is
recorded, as the video shows it: its ``qpos`` is copied into an ``MjData`` of the backend's single-env model with
free joints shifted by ``-env_origins[env_id]`` (the env frame), and ``mujoco.usd.exporter.USDExporter`` writes every
visible geom (MuJoCo's default geom groups 0-2) as a mesh whose transform is sampled once per frame.

Frames: frame 0 is the state when recording starts (after the env's reset), frame ``k`` the state after the
``k``-th ``step``; at most ``num_frames`` frames. Time code ``k`` is ``k · step_dt`` seconds
(``timeCodesPerSecond = 1 / step_dt``), so a USD viewer plays it in real time. An episode that ends inside the
recording jumps to the next episode's start, as in the video.

Output, in the exporter's own layout: ``<out_dir>/frames/frame_<num_frames>.usd`` (the stage; binary crate
format) and ``<out_dir>/assets/texture_<i>.png`` (the model's textures, referenced relative to the stage).
Needs ``usd-core`` (``pxr``) and Pillow, installed with the package.
"""

from __future__ import annotations

import copy
import os

import mujoco

from foundation.rsl_rl.rendering import copy_env_state


class UsdRolloutRecorder:
    """A VecEnv wrapper that records one environment into a time-sampled USD stage while the rollout runs.

    It forwards every attribute to the wrapped env and records after each :meth:`step`; :meth:`save` writes the
    stage. Only ``step`` is recorded: a ``reset`` shows up in the frame of the next step.

    Args:
        env: The wrapped env (``RslRlVecEnvWrapper``, already reset); its ``unwrapped.sim`` is the physics backend.
        out_dir: Folder for the stage and its textures (created; see the module docstring).
        num_frames: Frames to record, >= 1 (frame 0 is recorded now).
        env_id: Environment to record.

    Raises:
        ValueError: on ``num_frames < 1`` or an ``env_id`` outside ``[0, num_envs)``.
        ImportError: if ``usd-core`` (``pxr``) is not installed.
    """

    def __init__(self, env, out_dir: str, num_frames: int, env_id: int = 0) -> None:
        from mujoco.usd.exporter import USDExporter  # needs pxr (usd-core)

        if num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {num_frames}.")
        if not 0 <= env_id < env.num_envs:
            raise ValueError(f"env_id {env_id} is not an environment (num_envs={env.num_envs}).")
        self.env, self.env_id, self.num_frames, self.frames = env, env_id, num_frames, 0
        self._sim = env.unwrapped.sim
        self._step_dt = float(env.unwrapped.step_dt)
        self._model = copy.deepcopy(self._sim.model)
        self._data = mujoco.MjData(self._model)
        root, name = os.path.split(os.path.abspath(out_dir))
        vis = self._model.vis.global_  # the exporter only checks the size against the offscreen buffer
        self._exporter = USDExporter(self._model, height=min(480, vis.offheight), width=min(480, vis.offwidth),
                                     output_directory=name, output_directory_root=root, verbose=False)
        self._record()

    def __getattr__(self, name: str):
        return getattr(self.env, name)

    @property
    def done(self) -> bool:
        """Whether all ``num_frames`` frames have been recorded."""
        return self.frames >= self.num_frames

    def step(self, actions):
        """``env.step(actions)``, then record the new state (until :attr:`done`)."""
        out = self.env.step(actions)
        self._record()
        return out

    def _record(self) -> None:
        if self.done:
            return
        copy_env_state(self._sim, self.env_id, self._data)
        self._exporter.update_scene(self._data)
        self.frames += 1

    def save(self) -> str:
        """Write the stage; returns its path ``<out_dir>/frames/frame_<frames>.usd``."""
        stage = self._exporter.stage
        stage.SetTimeCodesPerSecond(1.0 / self._step_dt)
        stage.SetFramesPerSecond(1.0 / self._step_dt)
        self._exporter.save_scene(filetype="usd")
        exporter = self._exporter
        return os.path.join(exporter.output_directory_root, exporter.output_directory, "frames",
                            f"frame_{exporter.frame_count}.usd")
