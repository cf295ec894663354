"""The scripted insertion controller as a policy of the gear-assembly env: the baseline of the README's table, and a
source of demonstrations.

Each step the controller's TCP target (``scripted.ScriptedInsertion``) becomes the env's action
``(target - tcp) / action.pos_scale_m`` with yaw 0, so it goes through the same IK, action scale, servos and contact as
a learned policy. It reads the TCP, the exact shaft pose and the episode's shaft-estimate error from the env, not from
the observation.
"""

from __future__ import annotations

import math

import torch

from foundation.tasks.gear_assembly.gear_assembly_env import GearAssemblyEnv
from foundation.tasks.gear_assembly.scripted import ScriptedInsertion, ScriptedInsertionCfg


class ScriptedPolicy(torch.nn.Module):
    """The scripted insertion as a policy of a :class:`GearAssemblyEnv` (the interface ``evaluate`` calls).

    It reads the TCP, the exact shaft pose and the episode's estimate error from the env (not from the observation),
    and returns (N, 4) actions in [-1, 1].

    Args:
        env: The environment.
        cfg: Controller set-points; by default ``ScriptedInsertionCfg`` with ``max_step_m`` = the x, y action scale
            (its approach steps along z are clipped to the z scale).
        aim_off_axis_m: Horizontal aiming error, drawn per episode in a random direction, m.

    Raises:
        ValueError: if ``cfg.max_step_m`` exceeds the x, y action scale or ``cfg.max_push_m`` the z one.
    """

    def __init__(self, env: GearAssemblyEnv, cfg: ScriptedInsertionCfg | None = None,
                 aim_off_axis_m: float = 0.0) -> None:
        super().__init__()
        scale_xy, _, scale_z = env.cfg.action.pos_scale_m
        cfg = cfg or ScriptedInsertionCfg(max_step_m=scale_xy)
        if cfg.max_step_m > scale_xy + 1e-12 or cfg.max_push_m > scale_z + 1e-12:
            raise ValueError(f"The scripted controller's max_step_m ({cfg.max_step_m}) and max_push_m "
                             f"({cfg.max_push_m}) must not exceed the action scale in x, y ({scale_xy} m) and z "
                             f"({scale_z} m).")
        self._scale = torch.tensor(env.cfg.action.pos_scale_m, device=env.device)
        self.env = env
        self.controller = ScriptedInsertion(env.num_envs, cfg, env.device)
        self.aim_off_axis_m = aim_off_axis_m
        self.aim_offset = torch.zeros(env.num_envs, 3, device=env.device)

    def reset(self, dones: torch.Tensor | None = None) -> None:
        """Restart the phase machine of the envs whose episode ended (all when ``dones`` is None) and draw their
        aiming offset."""
        ids = (torch.arange(self.env.num_envs, device=self.env.device) if dones is None
               else dones.nonzero(as_tuple=False).squeeze(-1))
        self.controller.reset(ids)
        angle = 2 * math.pi * torch.rand(len(ids), generator=self.env.generator, device=self.env.device)
        self.aim_offset[ids, 0] = self.aim_off_axis_m * torch.cos(angle)
        self.aim_offset[ids, 1] = self.aim_off_axis_m * torch.sin(angle)

    def forward(self, obs) -> torch.Tensor:  # noqa: ARG002  (the controller reads the env, not the observation)
        """(N, 4) env actions in [-1, 1] towards the scripted controller's TCP target (reads the env's state)."""
        env = self.env
        aim = env.shaft_estimate_error() + self.aim_offset
        tcp = env.tcp_pos()
        target = self.controller.compute(tcp, env.shaft_tip_pos() + aim, env.shaft_seated_pos() + aim)
        actions = torch.zeros(env.num_envs, env.num_actions, device=env.device)
        actions[:, :3] = (target - tcp) / self._scale
        return actions.clamp(-1.0, 1.0)
