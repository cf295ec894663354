"""Observation layout of gear assembly: named terms with their sizes declared once, the two groups' term orders, and
the camera-like shaft estimate (a per-reset error).

The pattern is Isaac Lab Factory's (``OBS_DIM_CFG`` + ``obs_order``/``state_order``): the env computes a dict of named
terms and each group is their concatenation in its order, so a size is never written twice and a group's width
follows from its order (``group_size``).

Frames and units: positions in the environment frame (world minus the env origin; the robot base is at the origin),
metres; velocities world frame, m/s and rad/s; the wrist wrench in the force-torque site's frame, N and N·m.
"""

from __future__ import annotations

import torch

#: Size of every observation term.
OBS_DIM_CFG: dict[str, int] = {
    "joint_pos": 9,  # 7 arm joints + 2 finger joints, rad / m
    "joint_vel": 9,  # their velocities, rad/s / m/s
    "ee_pos": 3,  # TCP position, env frame, m
    "ee_rot": 6,  # TCP x and y axes in the world frame (the first two columns of its rotation matrix): a continuous
    #               orientation code; a quaternion of a gripper pointing down has w ≈ 0 and flips sign
    "ee_lin_vel": 3,  # TCP linear velocity, world frame, m/s (site Jacobian × joint velocities)
    "ee_ang_vel": 3,  # TCP angular velocity, world frame, rad/s
    "wrist_wrench": 6,  # MuJoCo force and torque sensors at the hand mount (site ``ft_site``), its frame, N and N·m
    "shaft_pos": 3,  # exact shaft tip, env frame, m (privileged)
    "ee_pos_rel_shaft": 3,  # TCP minus exact shaft tip, world frame, m (privileged)
    "shaft_pos_est": 3,  # shaft tip as a camera estimates it: exact + the episode's estimate error, env frame, m
    "ee_pos_rel_shaft_est": 3,  # TCP minus the estimated shaft tip, m (deployable: from the estimate only)
    "gear_pos_rel_seated": 3,  # gear centre minus its fully seated position, world frame, m (privileged)
    "gear_axis": 3,  # the gear's axis (its local z) in the world frame (privileged): its tilt. The hole is round, so
    #                  the gear's rotation about its own axis does not matter for insertion
    "gear_pos_rel_ee": 3,  # gear centre minus TCP, world frame, m (privileged: how the gear sits in the fingers)
    "contact_pos_rel_ee": 3,  # where the gear touches something, from the tared wrist wrench
    #                           (``contact_point_on_plane``): (x, y) of the contact point minus the TCP, world frame,
    #                           m, and a 0/1 in-contact flag
    "prev_action": 4,  # the last policy action, in [-1, 1]
}

#: The deployable group (the student's): what a real Panda with a wrist F/T sensor and a camera estimate of the
#: shaft provides. No gear pose.
POLICY_OBS_ORDER: tuple[str, ...] = ("joint_pos", "joint_vel", "ee_pos", "ee_rot", "wrist_wrench", "shaft_pos_est",
                                     "ee_pos_rel_shaft_est", "contact_pos_rel_ee", "prev_action")
#: The privileged group (the teacher's and critic's): exact shaft and gear poses, end-effector velocity, the exact
#: (noise-free) wrist wrench.
TEACHER_OBS_ORDER: tuple[str, ...] = ("joint_pos", "joint_vel", "ee_pos", "ee_rot", "ee_lin_vel", "ee_ang_vel",
                                      "wrist_wrench", "shaft_pos", "ee_pos_rel_shaft", "gear_pos_rel_seated",
                                      "gear_axis", "gear_pos_rel_ee", "prev_action")
#: Terms that reveal the gear's pose; none may be in the deployable group.
GEAR_POSE_TERMS: frozenset[str] = frozenset({"gear_pos_rel_seated", "gear_axis", "gear_pos_rel_ee"})


def group_size(order: tuple[str, ...]) -> int:
    """Width of a group: the sum of its terms' sizes.

    Raises:
        ValueError: on a term not in ``OBS_DIM_CFG`` (the message lists the valid ones).
    """
    unknown = [t for t in order if t not in OBS_DIM_CFG]
    if unknown:
        raise ValueError(f"Unknown observation terms {unknown}; valid: {', '.join(OBS_DIM_CFG)}.")
    return sum(OBS_DIM_CFG[t] for t in order)


def concat_terms(terms: dict[str, torch.Tensor], order: tuple[str, ...]) -> torch.Tensor:
    """(N, group_size(order)) float32: the named terms concatenated in ``order``.

    Raises:
        ValueError: if a term is missing or its width differs from ``OBS_DIM_CFG``.
    """
    parts = []
    for name in order:
        if name not in terms:
            raise ValueError(f"Observation term '{name}' was not computed; computed: {', '.join(terms)}.")
        t = terms[name]
        if t.shape[-1] != OBS_DIM_CFG[name]:
            raise ValueError(f"Observation term '{name}' has width {t.shape[-1]}, OBS_DIM_CFG says "
                             f"{OBS_DIM_CFG[name]}.")
        parts.append(t.float())
    return torch.cat(parts, dim=-1)


def sample_estimate_error(num: int, bound_m: float, generator: torch.Generator,
                          device: str | torch.device = "cpu") -> torch.Tensor:
    """(num, 3) shaft-estimate errors, each axis ~ U(-bound_m, bound_m), metres.

    Drawn once per reset and held for the whole episode, as Isaac Lab's gear-assembly task draws the noise of its
    shaft-pose observation at reset: a camera's bias, not frame-to-frame jitter that averaging would remove.

    Raises:
        ValueError: if ``bound_m`` is negative.
    """
    if bound_m < 0:
        raise ValueError(f"The shaft-estimate error bound must be >= 0 m, got {bound_m}.")
    return (2.0 * torch.rand(num, 3, generator=generator, device=device) - 1.0) * bound_m


def contact_point_on_plane(force_w: torch.Tensor, torque_w: torch.Tensor, sensor_pos_w: torch.Tensor,
                           plane_z: torch.Tensor, min_vertical_force_n: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Where a single contact force acts, from a force-torque reading: its line of action cut by a horizontal plane.

    A wrench (F, τ) measured about a sensor point s, caused by one force acting at a point p, satisfies
    τ = (p − s) × F; the points that satisfy it form the line s + (F × τ)/|F|² + t F (the force's line of action).
    Knowing the height of the contact (here: the gear's bottom face) picks the point on that line. Sign conventions
    cancel (flipping F and τ together leaves the line unchanged), so the sensor's reaction-force sign does not matter.
    The wrench must be the contact's alone: the static load (hand, gear) removed by a tare.

    Args:
        force_w, torque_w: (N, 3) contact force, N, and torque about the sensor point, N·m, world frame.
        sensor_pos_w: (N, 3) the sensor point, world frame, m.
        plane_z: (N,) height of the plane the contact lies in, world frame, m.
        min_vertical_force_n: Below this |F_z| (N) there is no contact to locate (or the line is nearly horizontal).

    Returns:
        ``(point, in_contact)``: (N, 3) the contact point, world frame, m (the sensor point where not in contact), and
        (N,) bool.
    """
    in_contact = force_w[:, 2].abs() > min_vertical_force_n
    fz = torch.where(in_contact, force_w[:, 2], torch.ones_like(force_w[:, 2]))
    r0 = torch.linalg.cross(force_w, torque_w, dim=1) / force_w.square().sum(dim=1, keepdim=True).clamp_min(1e-12)
    t = (plane_z - sensor_pos_w[:, 2] - r0[:, 2]) / fz
    point = sensor_pos_w + r0 + t.unsqueeze(1) * force_w
    return torch.where(in_contact.unsqueeze(1), point, sensor_pos_w), in_contact
