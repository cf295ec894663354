"""Configuration of the gear-assembly scene: model file, names, arm home pose, grasp and start randomisation."""

from __future__ import annotations

import math
import pathlib
from dataclasses import dataclass, field

from foundation.utils.config import FieldChecks

#: The scene MJCF (Panda + gear + gear base), package data.
SCENE_XML = pathlib.Path(__file__).resolve().parents[2] / "assets" / "gear_assembly" / "scene.xml"


@dataclass
class GearStartCfg:
    """Random start of an episode: the gear base's pose on the floor, and the held gear's offset above the shaft.

    Ranges are uniform (low, high). The gear is given relative to the shaft tip in the world frame: ``xy`` offset of
    its centre, ``height`` of its bottom face above the tip, and the hand's ``yaw`` about the vertical. Defaults are of
    the order of Isaac Lab's gear-assembly task (a few cm, a few tens of degrees).
    """

    base_x_m: tuple[float, float] = (0.45, 0.55)
    """Base position in the robot base frame (the Panda stands at the origin), m: within the arm's comfortable reach."""
    base_y_m: tuple[float, float] = (-0.1, 0.1)
    base_yaw_rad: tuple[float, float] = (-math.pi, math.pi)
    """Base yaw: the shaft is round, so any yaw is valid and exercises the shaft frame."""
    gear_xy_m: tuple[float, float] = (-0.03, 0.03)
    """Per axis, offset of the gear centre from the shaft axis, m."""
    gear_height_m: tuple[float, float] = (0.01, 0.05)
    """Height of the gear's bottom face above the shaft tip, m."""
    hand_yaw_rad: tuple[float, float] = (-math.radians(30), math.radians(30))
    """Hand yaw about the vertical relative to the home yaw, rad."""
    contact_fraction: float = 0.0
    """Share of the starts whose gear hangs just above the shaft's top face and off its axis (``contact_height_m``,
    ``contact_xy_radius_m``), in place of ``gear_height_m`` and ``gear_xy_m`` ("contact starts"). They are the states
    a policy that aims with a ±5 mm shaft estimate lands in: stopped at step 150 of a ±5 mm evaluation, 14.5 % of a
    student's episodes had the gear resting on the shaft top > 4 mm off the axis (``scripts/diagnose_gear_student.py``).
    0 (the task's start distribution) by default; the student's env (``GearAssemblyDistillationEnvCfg``) sets it."""
    contact_height_m: tuple[float, float] = (0.0005, 0.002)
    """Height of the gear's bottom face above the shaft tip in a contact start, m: the first push sets it down."""
    contact_xy_radius_m: tuple[float, float] = (0.003, 0.008)
    """Distance of the gear's axis from the shaft's in a contact start, m, in a uniform direction: from where the hole's
    rim rests on the rounded tip edge to where the gear's face covers the whole top face (hole radius ~5.5 mm, shaft
    5 mm; the ±5 mm per-axis estimate error is < 7.1 mm)."""

    def validate(self) -> None:
        """Raise ``ConfigError`` naming every range whose low end exceeds its high end, and a fraction out of [0, 1]."""
        c = FieldChecks(self, "gear start config")
        for key in ("base_x_m", "base_y_m", "base_yaw_rad", "gear_xy_m", "gear_height_m", "hand_yaw_rad"):
            c.range_pair(key)
        for key in ("contact_height_m", "contact_xy_radius_m"):  # above the shaft tip; a distance
            c.range_pair(key, 0.0)
        c.in_range("contact_fraction", 0, 1)
        c.raise_errors()


@dataclass
class GearSceneCfg:
    """Names in the scene MJCF and the grasp set-up (the model holds every size and mass; see the builder script)."""

    scene_xml: str = str(SCENE_XML)
    arm_joints: tuple[str, ...] = tuple(f"joint{i}" for i in range(1, 8))
    finger_joints: tuple[str, str] = ("finger_joint1", "finger_joint2")
    arm_actuators: tuple[str, ...] = tuple(f"actuator{i}" for i in range(1, 8))
    gripper_actuator: str = "actuator8"
    tcp_site: str = "tcp"
    gear_site: str = "gear_center"
    shaft_tip_site: str = "shaft_tip"
    seated_site: str = "gear_seated"
    gear_tooth_prefix: str = "gear_tooth"
    """Name prefix of the gear's teeth (vertical capsules, the grasp surface): they give the gear's outer radius,
    half thickness and tooth count."""
    gear_body: str = "gear"
    base_body: str = "gear_base"
    gear_joint: str = "gear_joint"
    base_joint: str = "gear_base_joint"
    arm_home_qpos: tuple[float, ...] = (0.0, 0.0, 0.0, -1.57079, 0.0, 1.57079, -0.7853)
    """Menagerie's "home" keyframe (source/franka_emika_panda/panda.xml), rad: the IK's start at every reset."""
    grip_ctrl: float = 0.0
    """Gripper command while holding (0..255 maps to a 0..40 mm tendon target): 0 squeezes with the full 40 N
    tendon force limit, 20 N per finger."""
    settle_s: float = 1.0
    """Physics time after placing the gear between the fingers, before the episode starts, s, while the grip builds up.
    The gear moves < 0.01 mm meanwhile with the scene's over-damped contacts (with damping ratio 1 it sank 1.2 mm in
    the first 0.7 s); 1 s is a margin."""
    start: GearStartCfg = field(default_factory=GearStartCfg)
