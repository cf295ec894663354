"""Point control of a Crazyflie 2.x: fly from a random, tilted, spinning start to a goal point and hold it there.

Reads like Isaac Lab's ``Isaac-Quadcopter-Direct-v0`` (same sim dt, decimation, episode length, goal ranges and
reward shape), with per-motor actions through a first-order rotor lag instead of a direct body wrench.

Actuation chain, per physics step (``_apply_action``):

    action a_i ∈ [-1, 1]  →  commanded thrust fraction c_i = (a_i + 1) / 2
    rotor speed s_i = ω_i / ω_max follows √c_i with a first-order lag (time constant ``motor_tau_s``)
    rotor thrust f_i = k_f ω_i² = T_max s_i²,   T_max = thrust_to_weight · m · g / 4
    rotor yaw torque q_i = spin_i (k_m / k_f) f_i
    X mixer: body torque τ = Σ r_i × f_i ẑ + Σ q_i ẑ (r_i: the MJCF's rotor sites); force = R Σ f_i ẑ (world)

so a constant command c on every motor settles at total thrust ``c · thrust_to_weight · m g``: the configured (or
sampled) thrust-to-weight ratio is the real one, checked by ``tests/tasks/test_point_ctrl.py``.

Domain randomisation draws, per episode, the mass m (a payload or battery at the centre of mass, so the inertia
stays the MJCF's) and the thrust-to-weight ratio. The N environments of the MuJoCo C backend share one compiled
model of nominal mass m₀, so the mass enters as the dynamically equivalent force: the applied force is scaled by
m₀ / m (the acceleration is then exactly that of mass m) and the torque is applied unscaled (inertia unchanged).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from foundation.assets import asset_path
from foundation.envs import DirectRLEnv, DirectRLEnvCfg, SceneCfg, SimCfg, SpawnCfg
from foundation.sim import load_spec
from foundation.utils.math import matrix_from_quat, quat_from_euler_xyz

GRAVITY = 9.81  # m/s², the MJCF's gravity


@dataclass
class CrazyflieCfg:
    """The quadrotor. Constants of the Crazyflie 2.x from ``cf2x.urdf`` of gym-pybullet-drones (MIT).

    Attributes:
        asset_path: MJCF file of one Crazyflie (free body ``body_name`` with sites ``rotor0..3``).
        spawn: ``spawn.usd_path``, Isaac Lab's key: load the Crazyflie from this USD file instead
            (``USD/crazyflie/cf2x.usda``, exported from ``asset_path``).
        body_name: Name of the free body.
        mass_kg: Nominal mass, 0.027 kg (cf2x.urdf); the MJCF's mass must match.
        kf: Rotor thrust coefficient, 3.16e-10 N/rpm² (cf2x.urdf; gym-pybullet-drones applies it to rpm).
        km: Rotor drag-torque coefficient, 7.94e-12 N·m/rpm² (cf2x.urdf). Only km / kf = 0.0251 m is used (yaw
            torque per newton of thrust), which is unit-free in the speed.
        rotor_spin: Sign of each rotor's yaw torque on the body, rotors 0..3 = motors M1..M4 (gym-pybullet-drones:
            τ_z = km(-ω0² + ω1² - ω2² + ω3²); M1, M3 spin counter-clockwise seen from above).
        motor_tau_s: Time constant of the first-order rotor-speed lag, seconds (a design choice of the order of
            the Crazyflie's brushed motors; not a measured constant).
        mass_range_kg: Per-episode uniform randomisation of the mass (covers the 29 g CF2.1 of Bitcraze's
            firmware). Set both ends equal to disable.
        thrust_to_weight_range: Per-episode uniform randomisation of the real thrust-to-weight ratio of the four
            rotors at full command, centred on cf2x.urdf's 2.25. Set both ends equal to disable.
    """

    asset_path: str = str(asset_path("crazyflie/cf2x.xml"))
    spawn: SpawnCfg = field(default_factory=SpawnCfg)
    body_name: str = "cf2x"
    mass_kg: float = 0.027
    kf: float = 3.16e-10
    km: float = 7.94e-12
    rotor_spin: tuple[float, float, float, float] = (-1.0, 1.0, -1.0, 1.0)
    motor_tau_s: float = 0.03
    mass_range_kg: tuple[float, float] = (0.025, 0.030)
    thrust_to_weight_range: tuple[float, float] = (2.0, 2.5)


@dataclass
class InitCfg:
    """Initial state, sampled per episode (env frame).

    Attributes:
        pos_m: Start position of the body, metres.
        max_tilt_rad: Roll and pitch ~ U(±max_tilt_rad) (yaw ~ U(±π)).
        max_lin_vel_mps: Each linear-velocity component ~ U(±max_lin_vel_mps), world frame.
        max_ang_vel_radps: Each body-rate component ~ U(±max_ang_vel_radps), body frame.
    """

    pos_m: tuple[float, float, float] = (0.0, 0.0, 1.0)
    max_tilt_rad: float = math.radians(30.0)
    max_lin_vel_mps: float = 0.2
    max_ang_vel_radps: float = 0.5


@dataclass
class GoalCfg:
    """Goal sampling (env frame, Isaac Lab's ranges) and success radius.

    Attributes:
        xy_range_m: Goal x and y ~ U(xy_range_m).
        z_range_m: Goal z ~ U(z_range_m).
        success_radius_m: An episode succeeds if it times out within this distance of the goal.
    """

    xy_range_m: tuple[float, float] = (-2.0, 2.0)
    z_range_m: tuple[float, float] = (0.5, 1.5)
    success_radius_m: float = 0.1


@dataclass
class NoiseCfg:
    """Gaussian noise of the deployable ``policy`` observations (standard deviations).

    Attributes:
        pos_m: Position-error noise, metres (order of a Lighthouse/mocap position estimate).
        lin_vel_mps: Velocity noise, m/s.
        gyro_radps: Gyroscope noise, rad/s.
    """

    pos_m: float = 0.01
    lin_vel_mps: float = 0.05
    gyro_radps: float = 0.02


@dataclass
class RewardCfg:
    """Reward weights; each term is multiplied by ``step_dt`` (Isaac Lab's convention).

    Attributes:
        distance_coarse: Weight of ``1 - tanh(d / distance_coarse_scale_m)`` (Isaac Lab's distance term: 15, 0.8 m).
        distance_fine: Weight of ``1 - tanh(d / distance_fine_scale_m)`` (sharpens the last centimetres).
        distance_coarse_scale_m, distance_fine_scale_m: Length scales of the two distance terms, metres.
        lin_vel: Weight of ``|v|²`` (Isaac Lab: -0.05).
        ang_vel: Weight of ``|ω|²`` (Isaac Lab: -0.01).
        crash: One-off reward on a crash (not scaled by ``step_dt``).
    """

    distance_coarse: float = 15.0
    distance_fine: float = 5.0
    distance_coarse_scale_m: float = 0.8
    distance_fine_scale_m: float = 0.1
    lin_vel: float = -0.05
    ang_vel: float = -0.01
    crash: float = -10.0


@dataclass
class PointCtrlEnvCfg(DirectRLEnvCfg):
    """Point-control task config. ``observation_space`` is the ``policy`` group's size (22), teacher's is 28.

    Attributes:
        robot, init, goal, noise, rewards: See their classes.
        min_height_m, max_height_m: The episode terminates (crash) outside this height band.
        max_abs_qpos, max_abs_qvel: Runaway bounds (see ``DirectRLEnvCfg``): 1000 m from the env origin, 1000 m/s
            or rad/s. Only a numerical blow-up reaches them: random actions reach 250 rad/s within an episode, a
            constant full yaw command spins the body up until the integration diverges (|qvel| ~ 1e140 after ~10 s
            at dt 0.01 s), and a real Crazyflie's gyro saturates at 2000 deg/s = 35 rad/s.
    """

    sim: SimCfg = field(default_factory=lambda: SimCfg(dt=1.0 / 100.0))
    scene: SceneCfg = field(default_factory=lambda: SceneCfg(num_envs=1024, env_spacing=0.0))
    decimation: int = 2
    episode_length_s: float = 10.0
    observation_space: int = 22
    action_space: int = 4
    robot: CrazyflieCfg = field(default_factory=CrazyflieCfg)
    init: InitCfg = field(default_factory=InitCfg)
    goal: GoalCfg = field(default_factory=GoalCfg)
    noise: NoiseCfg = field(default_factory=NoiseCfg)
    rewards: RewardCfg = field(default_factory=RewardCfg)
    min_height_m: float = 0.1
    max_height_m: float = 2.0
    max_abs_qpos: float | None = 1000.0
    max_abs_qvel: float | None = 1000.0


class PointCtrlEnv(DirectRLEnv):
    """Crazyflie point control; observation groups ``policy`` (22) and ``teacher`` (28), 4 actions.

    ``teacher`` (privileged), in order: exact goal position error in body frame (3, m), linear velocity in body
    frame (3, m/s), body rates (3, rad/s), rotation matrix body→world row-major (9), last action (4), rotor speeds
    ω/ω_max (4), mass / nominal mass (1), thrust-to-weight (1).
    ``policy`` (deployable) is the first 22 entries of ``teacher`` with Gaussian noise on the first 9 (a real
    Crazyflie's position estimate, velocity estimate and gyro): no motor state, no physical parameters.

    The hot path (``_apply_action``, ``_get_observations``, ``_get_rewards``) uses a handful of batched tensor ops:
    at 1024 envs, torch call overhead, not arithmetic, is the cost next to ``mj_step``.
    """

    cfg: PointCtrlEnvCfg

    def __init__(self, cfg: PointCtrlEnvCfg, render_mode: str | None = None, **kwargs) -> None:
        if (cfg.observation_space, cfg.action_space) != (22, 4):
            raise ValueError(f"Point control has a 22-D 'policy' observation and 4 actions; got observation_space="
                             f"{cfg.observation_space}, action_space={cfg.action_space}.")
        super().__init__(cfg, render_mode, **kwargs)
        n, dev, rc = self.num_envs, self.device, cfg.robot
        model = self.sim.model
        body = model.body(rc.body_name).id
        self._dof = int(model.body_dofadr[body])  # free joint: dofs [v_world (3), ω_body (3)]
        self._qadr = int(model.jnt_qposadr[model.body_jntadr[body]])  # qpos [p_world (3), q_wxyz (4)]
        self._actions = torch.zeros(n, 4, device=dev)
        self._speed_cmd = torch.zeros(n, 4, device=dev)
        self._rotor_speed = torch.zeros(n, 4, device=dev)  # ω / ω_max, in [0, 1]
        self._goal_pos = torch.zeros(n, 3, device=dev)  # env frame, m
        self._params = torch.zeros(n, 2, device=dev)  # [mass / nominal mass, thrust-to-weight]
        self._thrust_max = torch.zeros(n, 1, device=dev)  # N per rotor at full speed
        self._force_scale = torch.ones(n, 1, device=dev)  # nominal mass / mass (see module docstring)
        self._crashed = torch.zeros(n, dtype=torch.bool, device=dev)
        self._motor_alpha = 1.0 - math.exp(-cfg.sim.dt / rc.motor_tau_s)  # exact first-order lag per physics step
        rotor_ids = [self.sim.site_names.index(f"rotor{i}") for i in range(4)]
        rotor_xy = torch.as_tensor(model.site_pos[rotor_ids, :2], dtype=torch.float32, device=dev)
        spin = torch.tensor(rc.rotor_spin, device=dev)
        # (4, 4): rotor thrusts (N) → [total thrust (N), τx, τy, τz (N·m)] in the body frame (X mixer):
        # τx = Σ y_i f_i, τy = -Σ x_i f_i, τz = Σ spin_i (km / kf) f_i.
        self._thrust_to_wrench = torch.stack(
            [torch.ones(4, device=dev), rotor_xy[:, 1], -rotor_xy[:, 0], spin * rc.km / rc.kf], dim=1)
        rw = cfg.rewards
        self._reward_names = ("distance_coarse", "distance_fine", "lin_vel", "ang_vel", "crash")
        self._reward_weights = torch.tensor([rw.distance_coarse * self.step_dt, rw.distance_fine * self.step_dt,
                                             rw.lin_vel * self.step_dt, rw.ang_vel * self.step_dt, rw.crash],
                                            device=dev)
        self._episode_sums = torch.zeros(n, len(self._reward_names), device=dev)
        nc = cfg.noise
        self._noise_std = torch.tensor([nc.pos_m] * 3 + [nc.lin_vel_mps] * 3 + [nc.gyro_radps] * 3, device=dev)
        # Per-episode random draws, as (low, high) columns: goal xyz, mass, thrust-to-weight, roll, pitch, yaw,
        # linear velocity xyz, body rates xyz.
        ic, gc = cfg.init, cfg.goal
        bounds = [gc.xy_range_m, gc.xy_range_m, gc.z_range_m, rc.mass_range_kg, rc.thrust_to_weight_range,
                  (-ic.max_tilt_rad, ic.max_tilt_rad), (-ic.max_tilt_rad, ic.max_tilt_rad), (-math.pi, math.pi)]
        bounds += [(-ic.max_lin_vel_mps, ic.max_lin_vel_mps)] * 3 + [(-ic.max_ang_vel_radps, ic.max_ang_vel_radps)] * 3
        self._draw_low = torch.tensor([b[0] for b in bounds], device=dev)
        self._draw_span = torch.tensor([b[1] - b[0] for b in bounds], device=dev)
        self._start_pos = torch.tensor(ic.pos_m, device=dev)
        self.reset()

    def observation_sizes(self) -> dict[str, int]:
        """``{"policy": 22, "teacher": 28}``."""
        return {"policy": 22, "teacher": 28}

    # -------------------------------------------------------------------------------------------------- scene
    def _setup_scene(self):  # -> mujoco.MjSpec (see DirectRLEnv._setup_scene)
        spec = load_spec(self.cfg.robot.spawn.usd_path or self.cfg.robot.asset_path)
        body = spec.copy().compile().body(self.cfg.robot.body_name)
        if abs(body.mass[0] - self.cfg.robot.mass_kg) > 1e-9:
            raise ValueError(f"MJCF mass {body.mass[0]} kg of '{self.cfg.robot.body_name}' differs from "
                             f"robot.mass_kg={self.cfg.robot.mass_kg}.")
        return spec

    # ------------------------------------------------------------------------------------------------ actions
    def _pre_physics_step(self, actions: torch.Tensor) -> None:
        self._actions = actions.clamp(-1.0, 1.0)
        torch.sqrt((self._actions + 1.0) * 0.5, out=self._speed_cmd)

    def _apply_action(self) -> None:
        self._rotor_speed.lerp_(self._speed_cmd, self._motor_alpha)
        thrust = self._rotor_speed.square() * self._thrust_max  # (N, 4) N
        wrench_b = thrust @ self._thrust_to_wrench  # (N, 4) [F, τx, τy, τz], body frame
        w, x, y, z = self._root_quat().unbind(1)
        body_z_w = torch.stack([2 * (x * z + w * y), 2 * (y * z - w * x), 1 - 2 * (x * x + y * y)], dim=1)
        qfrc = self.sim.qfrc_applied
        qfrc[:, self._dof:self._dof + 3] = body_z_w * (wrench_b[:, :1] * self._force_scale)
        qfrc[:, self._dof + 3:self._dof + 6] = wrench_b[:, 1:]

    # ------------------------------------------------------------------------------------------- state access
    def _root_pos(self) -> torch.Tensor:
        """(N, 3) env-frame position, m."""
        return self.sim.qpos[:, self._qadr:self._qadr + 3].float() - self.sim.env_origins

    def _root_quat(self) -> torch.Tensor:
        """(N, 4) orientation, (w, x, y, z)."""
        return self.sim.qpos[:, self._qadr + 3:self._qadr + 7].float()

    def distance_to_goal(self) -> torch.Tensor:
        """(N,) distance between the body and its goal, m."""
        return torch.linalg.vector_norm(self._goal_pos - self._root_pos(), dim=1)

    def set_goal(self, env_ids: torch.Tensor, goal_pos: torch.Tensor) -> None:
        """Move the goals of ``env_ids`` (K,) to ``goal_pos`` (K, 3), env frame, metres (e.g. a trajectory)."""
        self._goal_pos[env_ids] = goal_pos.to(self._goal_pos)

    def debug_markers(self) -> dict[str, torch.Tensor]:
        """Points to draw in renderings: ``{"goal": (N, 3)}`` env-frame positions, metres."""
        return {"goal": self._goal_pos}

    # -------------------------------------------------------------------------------------------- observations
    def _get_observations(self) -> dict[str, torch.Tensor]:
        rot = matrix_from_quat(self._root_quat())  # (N, 3, 3) body → world
        qvel = self.sim.qvel[:, self._dof:self._dof + 6].float()
        vecs_w = torch.stack([self._goal_pos - self._root_pos(), qvel[:, :3]], dim=2)  # (N, 3, 2)
        vecs_b = (rot.transpose(1, 2) @ vecs_w).transpose(1, 2).flatten(1)  # [pos_err_b, lin_vel_b]
        teacher = torch.cat([vecs_b, qvel[:, 3:], rot.flatten(1), self._actions, self._rotor_speed, self._params],
                            dim=1)
        noise = torch.randn(self.num_envs, 9, generator=self.generator, device=self.device)
        policy = torch.cat([torch.addcmul(teacher[:, :9], noise, self._noise_std), teacher[:, 9:22]], dim=1)
        return {"policy": policy, "teacher": teacher}

    # -------------------------------------------------------------------------------------------------- rewards
    def _get_rewards(self) -> torch.Tensor:
        d = self.distance_to_goal()
        qvel = self.sim.qvel[:, self._dof:self._dof + 6].float().square()
        rc = self.cfg.rewards
        terms = torch.stack([1.0 - torch.tanh(d / rc.distance_coarse_scale_m),
                             1.0 - torch.tanh(d / rc.distance_fine_scale_m), qvel[:, :3].sum(1),
                             qvel[:, 3:].sum(1), self._crashed.float()], dim=1) * self._reward_weights
        self._episode_sums += terms
        return terms.sum(dim=1)

    # ---------------------------------------------------------------------------------------------------- dones
    def _get_dones(self) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.sim.qpos[:, self._qadr + 2].float() - self.sim.env_origins[:, 2]
        self._crashed = (z < self.cfg.min_height_m) | (z > self.cfg.max_height_m)
        return self._crashed, self.episode_length_buf >= self.max_episode_length

    # ---------------------------------------------------------------------------------------------------- reset
    def _reset_idx(self, env_ids: torch.Tensor) -> None:
        if self.episode_length_buf[env_ids].max() > 0:
            self._log_episodes(env_ids)
        super()._reset_idx(env_ids)
        k, rc = len(env_ids), self.cfg.robot
        u = self._draw_low + self._draw_span * torch.rand(k, len(self._draw_low), generator=self.generator,
                                                          device=self.device)
        self._goal_pos[env_ids] = u[:, 0:3]
        mass, thrust_to_weight = u[:, 3:4], u[:, 4:5]
        self._params[env_ids] = torch.cat([mass / rc.mass_kg, thrust_to_weight], dim=1)
        self._thrust_max[env_ids] = thrust_to_weight * mass * GRAVITY / 4.0
        self._force_scale[env_ids] = rc.mass_kg / mass
        self._actions[env_ids] = 0.0
        self._speed_cmd[env_ids] = 0.0
        self._rotor_speed[env_ids] = 0.0
        self._crashed[env_ids] = False
        self._episode_sums[env_ids] = 0.0
        qpos = torch.cat([self._start_pos + self.sim.env_origins[env_ids],
                          quat_from_euler_xyz(u[:, 5], u[:, 6], u[:, 7])], dim=1)
        qvel = torch.zeros(k, self.sim.model.nv, device=self.device)
        qvel[:, self._dof:self._dof + 6] = u[:, 8:14]
        full_qpos = self.sim.qpos[env_ids].float()
        full_qpos[:, self._qadr:self._qadr + 7] = qpos
        self.sim.write_state(env_ids, full_qpos, qvel)

    def _log_episodes(self, env_ids: torch.Tensor) -> None:
        """Put the metrics of the episodes ending in ``env_ids`` into ``extras["log"]`` and
        ``extras["episode_outcomes"]``."""
        log = self.extras.setdefault("log", {})
        sums = (self._episode_sums[env_ids] / self.cfg.episode_length_s).mean(dim=0).tolist()
        log.update({f"Episode_Reward/{name}": v for name, v in zip(self._reward_names, sums)})
        crashed = self._crashed[env_ids]
        d = self.distance_to_goal()[env_ids]
        success = ~crashed & (d < self.cfg.goal.success_radius_m)
        self.extras["episode_outcomes"] = {"env_ids": env_ids, "success": success, "crash": crashed,
                                           "final_distance": d}
        log["Episode_Metric/success"] = success.float().mean().item()
        log["Episode_Metric/crash"] = crashed.float().mean().item()
        if not crashed.all():
            log["Episode_Metric/final_distance"] = d[~crashed].mean().item()
