"""Render single environments of a batched MuJoCo env: offscreen images for videos, decorations for the viewer.

Every env of a :class:`~foundation.envs.DirectRLEnv` is a copy of the backend's single-environment model
``env.sim.model``. To show env ``k``, its ``qpos`` is copied from the backend tensors (``sim.qpos[k]``: float64 for
MuJoCo C, float32 for Warp, any device) into one ``mujoco.MjData`` of that model, free-joint positions shifted by
``-sim.env_origins[k]`` so the robot is centred, then ``mujoco.mj_forward`` computes the poses.

The scene is decorated with a ground grid (z = 0) and the task's debug markers, if the task provides them through
this **optional hook** (no task has to)::

    def debug_markers(self) -> dict[str, torch.Tensor]:
        '''Named points to draw: name -> (num_envs, 3) positions in the env frame, metres.'''

Each marker is drawn as a small sphere, joined to the tracked body by a thin line. Point control returns
``{"goal": goal positions}``.

Offscreen rendering needs an OpenGL backend chosen before ``mujoco`` is imported: ``MUJOCO_GL=egl`` (GPU or Mesa
EGL; what ``play.py`` sets on a machine without display) or ``MUJOCO_GL=osmesa`` (software fallback, needs the
system package ``libosmesa6``).
"""

from __future__ import annotations

import copy
import os
import time

import mujoco
import numpy as np
import torch

#: RGBA of markers, in the order of the names returned by ``debug_markers`` (cycled).
MARKER_COLORS = ((0.1, 0.9, 0.2, 0.6), (1.0, 0.5, 0.1, 0.6), (0.2, 0.6, 1.0, 0.6), (0.9, 0.2, 0.9, 0.6))
GRID_RGBA = (0.55, 0.55, 0.6, 1.0)
GROUND_RGBA = (0.16, 0.17, 0.2, 1.0)
PATH_RGBA = (1.0, 0.85, 0.2, 0.8)


def env_markers(env) -> dict[str, np.ndarray]:
    """The task's debug markers as ``{name: (N, 3) float64 numpy}`` (env frame, m); ``{}`` if it has no hook.

    Args:
        env: The (unwrapped) environment.

    Raises:
        ValueError: if the hook returns something other than (N, 3) arrays.
    """
    hook = getattr(env, "debug_markers", None)
    if not callable(hook):
        return {}
    markers = {}
    for name, value in hook().items():
        arr = value.detach().cpu().double().numpy() if isinstance(value, torch.Tensor) else np.asarray(value, float)
        if arr.ndim != 2 or arr.shape[1] != 3:
            raise ValueError(f"debug_markers()['{name}'] must be (num_envs, 3) positions, got {arr.shape}.")
        markers[name] = arr
    return markers


def camera_settings(env, distance: float | None = None) -> dict:
    """``{"track_body", "distance", "azimuth", "elevation"}`` of the env's ``cfg.viewer`` (``ViewerCfg``), for
    :class:`EnvRenderer` / :class:`PassiveViewer`; ``distance`` (e.g. ``play.py --camera_distance``) wins over the
    cfg's.

    Raises:
        ValueError: if ``cfg.viewer.body_name`` is not a body of the model (the message lists the valid ones).
    """
    unwrapped = env.unwrapped
    viewer, sim = unwrapped.cfg.viewer, unwrapped.sim
    track_body = 1 if sim.model.nbody > 1 else 0
    if viewer.body_name is not None:
        try:
            track_body = sim.body_index(viewer.body_name) + 1  # the body arrays leave out the world body
        except ValueError as err:
            raise ValueError(f"env.viewer.body_name: {err}") from None
    return {"track_body": track_body, "distance": distance if distance is not None else viewer.distance_m,
            "azimuth": viewer.azimuth_deg, "elevation": viewer.elevation_deg}


def copy_env_state(sim, env_id: int, data: mujoco.MjData) -> None:
    """Copy env ``env_id``'s ``qpos`` from the backend into ``data`` (centred on its origin) and run ``mj_forward``.

    Args:
        sim: The physics backend (``env.sim``), with ``model``, ``qpos`` (N, nq) and ``env_origins`` (N, 3).
        env_id: Environment index.
        data: An ``MjData`` of ``sim.model`` (or of a copy of it).
    """
    free_cols = sim.free_pos_cols
    qpos = sim.qpos[env_id].detach().cpu().double().numpy().copy()
    if len(free_cols):
        origin = sim.env_origins[env_id].detach().cpu().double().numpy()
        qpos[free_cols] -= np.tile(origin, len(free_cols) // 3)
    data.qpos[:] = qpos
    mujoco.mj_forward(sim.model, data)


# --------------------------------------------------------------------------------------------- scene decorations
def add_sphere(scene: mujoco.MjvScene, pos: np.ndarray, radius: float, rgba) -> None:
    """Append a sphere of ``radius`` m at ``pos`` (3,) to ``scene`` (ignored when the scene is full)."""
    if scene.ngeom >= scene.maxgeom:
        return
    mujoco.mjv_initGeom(scene.geoms[scene.ngeom], mujoco.mjtGeom.mjGEOM_SPHERE, np.array([radius, 0.0, 0.0]),
                        np.asarray(pos, np.float64), np.eye(3).ravel(), np.asarray(rgba, np.float32))
    scene.ngeom += 1


def add_line(scene: mujoco.MjvScene, p0: np.ndarray, p1: np.ndarray, rgba, width: float = 2.0) -> None:
    """Append a line from ``p0`` to ``p1`` (3,) (world frame, m; ``width`` in pixels) to ``scene``."""
    if scene.ngeom >= scene.maxgeom:
        return
    geom = scene.geoms[scene.ngeom]
    mujoco.mjv_initGeom(geom, mujoco.mjtGeom.mjGEOM_LINE, np.zeros(3), np.zeros(3), np.eye(3).ravel(),
                        np.asarray(rgba, np.float32))
    mujoco.mjv_connector(geom, mujoco.mjtGeom.mjGEOM_LINE, width, np.asarray(p0, np.float64),
                         np.asarray(p1, np.float64))
    scene.ngeom += 1


def add_ground_grid(scene: mujoco.MjvScene, center: np.ndarray, half_extent: float = 4.0,
                    spacing: float = 0.5) -> None:
    """Append a dark floor and a square grid of lines in the z = 0 plane to ``scene``.

    The grid is ``2·half_extent`` m wide with lines every ``spacing`` m, centred on ``center`` (3,) snapped to the
    spacing: it moves with the camera target but its lines stay fixed in the world.
    """
    cx, cy = (np.round(np.asarray(center[:2]) / spacing) * spacing).tolist()
    if scene.ngeom < scene.maxgeom:  # a filled floor under the lines (slightly lower: no z-fighting)
        mujoco.mjv_initGeom(scene.geoms[scene.ngeom], mujoco.mjtGeom.mjGEOM_BOX,
                            np.array([half_extent, half_extent, 5e-3]), np.array([cx, cy, -1e-2]),
                            np.eye(3).ravel(), np.asarray(GROUND_RGBA, np.float32))
        scene.ngeom += 1
    ticks = np.arange(-half_extent, half_extent + 1e-9, spacing)
    for t in ticks:
        add_line(scene, (cx + t, cy - half_extent, 0.0), (cx + t, cy + half_extent, 0.0), GRID_RGBA, 1.0)
        add_line(scene, (cx - half_extent, cy + t, 0.0), (cx + half_extent, cy + t, 0.0), GRID_RGBA, 1.0)


def decorate_scene(scene: mujoco.MjvScene, anchor: np.ndarray, markers: dict[str, np.ndarray] | None = None,
                   path: np.ndarray | None = None, marker_radius: float = 0.03, grid: bool = True) -> None:
    """Append ground grid, markers (spheres joined to ``anchor`` by lines) and a path polyline to ``scene``.

    Args:
        scene: The scene (``renderer.scene`` after ``update_scene``, or a viewer's ``user_scn``).
        anchor: (3,) position the camera follows (the tracked body), m; centre of the grid.
        markers: ``{name: (3,) position}`` in the rendered (env-centred) frame, m.
        path: (P, 3) points of a polyline to draw (e.g. a reference trajectory), m.
        marker_radius: Sphere radius, m.
        grid: Draw the ground grid.
    """
    if grid:
        add_ground_grid(scene, anchor)
    if path is not None:
        for p0, p1 in zip(path[:-1], path[1:]):
            add_line(scene, p0, p1, PATH_RGBA, 2.0)
    for i, (_, pos) in enumerate((markers or {}).items()):
        rgba = MARKER_COLORS[i % len(MARKER_COLORS)]
        add_sphere(scene, pos, marker_radius, rgba)
        add_line(scene, anchor, pos, rgba[:3] + (0.5,), 1.5)


def draw_text(image: np.ndarray, lines: list[str]) -> np.ndarray:
    """``image`` (H, W, 3) uint8 with ``lines`` written in its top-left corner (white on a dark box)."""
    from PIL import Image, ImageDraw  # Pillow comes with imageio and matplotlib

    img = Image.fromarray(image)
    draw = ImageDraw.Draw(img)
    text = "\n".join(lines)
    box = draw.multiline_textbbox((4, 2), text)
    draw.rectangle((box[0] - 2, box[1] - 2, box[2] + 2, box[3] + 2), fill=(0, 0, 0))
    draw.multiline_text((4, 2), text, fill=(255, 255, 255))
    return np.asarray(img)


# ------------------------------------------------------------------------------------------------ the renderer
class EnvRenderer:
    """Offscreen renderer of one environment at a time, with a camera tracking the robot.

    Owns one ``mujoco.MjData`` of the backend's single-env model and one ``mujoco.Renderer`` (an OpenGL context:
    see the module docstring for ``MUJOCO_GL``).

    Args:
        sim: The physics backend (``env.unwrapped.sim``).
        width, height: Image size, pixels (even numbers, for H.264 videos).
        track_body: Body id the camera tracks (1: the first body after the world body, the robot's root).
        distance: Camera distance to the tracked body, m; None: ``max(1.5, 3 · model.stat.extent)``.
        azimuth, elevation: Camera angles, degrees.
        marker_radius: Radius of the debug-marker spheres, m.

    Raises:
        ValueError: on a non-positive or odd image size, or a ``track_body`` the model does not have.
    """

    def __init__(self, sim, width: int = 384, height: int = 288, track_body: int = 1, distance: float | None = None,
                 azimuth: float = 135.0, elevation: float = -20.0, marker_radius: float = 0.03) -> None:
        if width <= 0 or height <= 0 or width % 2 or height % 2:
            raise ValueError(f"Image size must be positive and even (H.264), got {width}x{height}.")
        model = sim.model
        if not 0 <= track_body < model.nbody:
            raise ValueError(f"track_body {track_body} is not a body of the model (nbody={model.nbody}).")
        self.sim = sim
        self.model = copy.deepcopy(model)  # visual settings change without touching the simulation
        self.model.vis.global_.offwidth = max(self.model.vis.global_.offwidth, width)
        self.model.vis.global_.offheight = max(self.model.vis.global_.offheight, height)
        self.model.vis.headlight.ambient[:] = 0.45
        self.model.vis.headlight.diffuse[:] = 0.7
        self.data = mujoco.MjData(self.model)
        self.renderer = mujoco.Renderer(self.model, height, width)
        self.camera = mujoco.MjvCamera()
        aim_camera(self.camera, model, track_body, distance, azimuth, elevation)
        self.track_body, self.marker_radius = track_body, marker_radius
        self.width, self.height = width, height

    def render(self, env_id: int, markers: dict[str, np.ndarray] | None = None, path: np.ndarray | None = None,
               text: list[str] | None = None) -> np.ndarray:
        """Image (height, width, 3) uint8 of env ``env_id`` now.

        Args:
            env_id: Environment index.
            markers: ``{name: (3,) env-frame position}`` to draw (e.g. one row of :func:`env_markers`), m.
            path: (P, 3) env-frame polyline to draw, m.
            text: Lines written in the top-left corner.
        """
        copy_env_state(self.sim, env_id, self.data)
        self.renderer.update_scene(self.data, self.camera)
        anchor = self.data.xpos[self.track_body].copy() if self.track_body > 0 else np.zeros(3)
        decorate_scene(self.renderer.scene, anchor, markers, path, self.marker_radius)
        image = self.renderer.render()
        return draw_text(image, text) if text else image

    def close(self) -> None:
        """Release the OpenGL context."""
        self.renderer.close()


def aim_camera(camera: mujoco.MjvCamera, model: mujoco.MjModel, track_body: int, distance: float | None,
               azimuth: float = 135.0, elevation: float = -20.0) -> None:
    """Make ``camera`` track body ``track_body`` (free camera if 0) from ``distance`` m (None:
    ``max(1.5, 3 · model.stat.extent)``) at ``azimuth`` and ``elevation``, degrees."""
    if track_body > 0:
        camera.type = mujoco.mjtCamera.mjCAMERA_TRACKING
        camera.trackbodyid = track_body
    else:
        camera.type = mujoco.mjtCamera.mjCAMERA_FREE
    camera.distance = distance if distance is not None else max(1.5, 3.0 * float(model.stat.extent))
    camera.azimuth, camera.elevation = azimuth, elevation


# ------------------------------------------------------------------------------------------------------ displays
class VideoRecorder:
    """Writes the first ``num_frames`` frames of envs ``env_ids``, rendered side by side, to an MP4 (H.264).

    Args:
        sim: The physics backend (``env.unwrapped.sim``).
        path: Output ``.mp4`` file (its folder is created).
        fps: Frames per second (``round(1 / step_dt)`` for real time).
        num_frames: Frames to record; :attr:`done` afterwards.
        env_ids: Environments to show, left to right.
        width, height: Size of each env's tile, pixels (even); the frame is ``len(env_ids) · width`` wide.
        **camera: Passed to :class:`EnvRenderer` (``distance``, ``azimuth``, ``elevation``, ...).

    Raises:
        ValueError: on an empty ``env_ids``, ``num_frames < 1`` or a bad tile size.
    """

    def __init__(self, sim, path: str, fps: int, num_frames: int, env_ids: list[int], width: int = 384,
                 height: int = 288, **camera) -> None:
        import imageio  # only needed for videos

        if not env_ids or num_frames < 1:
            raise ValueError(f"Need at least one env and one frame, got env_ids={env_ids}, num_frames={num_frames}.")
        self.renderer = EnvRenderer(sim, width, height, **camera)
        self.path, self.num_frames, self.env_ids, self.frames = path, num_frames, list(env_ids), 0
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self._writer = imageio.get_writer(path, fps=fps, codec="libx264", quality=8, macro_block_size=2,
                                          pixelformat="yuv420p")

    @property
    def done(self) -> bool:
        """Whether all ``num_frames`` frames have been written."""
        return self.frames >= self.num_frames

    def add_frame(self, markers: dict[str, np.ndarray] | None = None, path: np.ndarray | None = None,
                  texts: dict[int, list[str]] | None = None) -> None:
        """Render the envs now and append the frame (no-op once :attr:`done`).

        Args:
            markers: ``{name: (N, 3)}`` env-frame positions of all envs (:func:`env_markers`), m.
            path: (P, 3) env-frame polyline drawn in every tile, m.
            texts: ``{env_id: lines}`` written in that env's tile.
        """
        if self.done:
            return
        tiles = [self.renderer.render(k, {n: v[k] for n, v in (markers or {}).items()}, path,
                                      (texts or {}).get(k)) for k in self.env_ids]
        self._writer.append_data(np.concatenate(tiles, axis=1))
        self.frames += 1

    def close(self) -> None:
        """Finish the file and release the renderer."""
        self._writer.close()
        self.renderer.close()


class PassiveViewer:
    """Interactive MuJoCo viewer (``mujoco.viewer.launch_passive``) following one env, paced to real time.

    Needs a display. The viewer shows a copy of the single-env model whose ``qpos`` is copied from the backend at
    every :meth:`show`.

    Args:
        sim: The physics backend (``env.unwrapped.sim``).
        step_dt: Seconds of simulated time per :meth:`show` (the policy step): the viewer sleeps to real time.
        env_id: Environment to follow.
        track_body, distance, azimuth, elevation: Camera, as :class:`EnvRenderer`'s.
        marker_radius: Radius of the debug-marker spheres, m.
    """

    def __init__(self, sim, step_dt: float, env_id: int = 0, track_body: int = 1, distance: float | None = None,
                 azimuth: float = 135.0, elevation: float = -20.0, marker_radius: float = 0.03) -> None:
        import mujoco.viewer  # needs a display

        self.sim, self.step_dt, self.env_id, self.marker_radius = sim, step_dt, env_id, marker_radius
        self.model = copy.deepcopy(sim.model)
        self.data = mujoco.MjData(self.model)
        copy_env_state(sim, env_id, self.data)
        self.viewer = mujoco.viewer.launch_passive(self.model, self.data)
        aim_camera(self.viewer.cam, self.model, track_body, distance, azimuth, elevation)
        self._next = time.perf_counter()

    def is_running(self) -> bool:
        """False once the user closed the window."""
        return self.viewer.is_running()

    def show(self, markers: dict[str, np.ndarray] | None = None, path: np.ndarray | None = None) -> None:
        """Copy the followed env's state into the viewer, redraw, and sleep until real time.

        Args:
            markers: ``{name: (N, 3)}`` env-frame positions of all envs, m.
            path: (P, 3) env-frame polyline, m.
        """
        with self.viewer.lock():
            copy_env_state(self.sim, self.env_id, self.data)
            scene = self.viewer.user_scn
            scene.ngeom = 0
            anchor = self.data.xpos[1].copy() if self.model.nbody > 1 else np.zeros(3)
            decorate_scene(scene, anchor, {n: v[self.env_id] for n, v in (markers or {}).items()}, path,
                           self.marker_radius)
        self.viewer.sync()
        self._next += self.step_dt
        time.sleep(max(0.0, self._next - time.perf_counter()))
        self._next = max(self._next, time.perf_counter() - self.step_dt)  # do not race to catch up after a stall

    def close(self) -> None:
        """Close the window."""
        self.viewer.close()
