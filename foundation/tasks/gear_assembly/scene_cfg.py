"""Configuration of the gear-assembly scene: model file, names, arm home pose, grasp and start randomisation."""

from __future__ import annotations

import math
import pathlib
from dataclasses import dataclass, field

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
    """Gripper command while holding (0..255 maps to a 0..40 mm tendon target): 0 squeezes with the full 10 N
    tendon force limit, 5 N per finger."""
    settle_s: float = 1.0
    """Physics time after placing the gear between the fingers, before the episode starts, s, while the grip builds up.
    The gear moves < 0.01 mm meanwhile with the scene's over-damped contacts (with damping ratio 1 it sank 1.2 mm in
    the first 0.7 s); 1 s is a margin."""
    start: GearStartCfg = field(default_factory=GearStartCfg)
