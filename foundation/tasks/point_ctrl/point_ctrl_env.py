"""Point control of a Crazyflie 2.x: fly from a random, tilted, spinning start to a goal point and hold it there.

Reads like Isaac Lab's ``Isaac-Quadcopter-Direct-v0`` (same sim dt, decimation, episode length, goal ranges and
reward shape), with per-motor actions through a first-order rotor lag instead of a direct body wrench.

Actuation chain, per physics step (``_apply_action``):

    action a_i ∈ [-1, 1]  →  commanded thrust fraction c_i = (a_i + 1) / 2
    rotor speed s_i = ω_i / ω_max follows √c_i with a first-order lag (time constant ``motor_tau_s``)
    rotor thrust f_i = k_f ω_i² = T_max s_i²,   T_max = thrust_to_weight · m · g / 4
    rotor yaw torque q_i = ±(k_m / k_f) f_i      (sign = spin direction)
    X mixer: body torque τ = Σ r_i × f_i ẑ + Σ q_i ẑ, with r_i the rotor sites of the MJCF; force = R Σ f_i ẑ

so a constant command c on every motor settles at total thrust ``c · thrust_to_weight · m g``: the configured
thrust-to-weight ratio is the real one (checked by ``tests/tasks/test_point_ctrl.py``). Mass randomisation is applied
as the dynamically equivalent scaling of the applied wrench by m_nominal / m_env (linear and angular accelerations
are exactly those of a body of mass m_env whose inertia scales with its mass), because the N environments of the
MuJoCo C backend share one compiled model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import mujoco
import torch

from foundation.assets import asset_path
from foundation.envs import DirectRLEnv, DirectRLEnvCfg, SceneCfg, SimCfg
from foundation.utils.math import quat_from_euler_xyz, quat_to_rotmat

GRAVITY = 9.81  # m/s², the MJCF's gravity


@dataclass
class CrazyflieCfg:
    """The quadrotor. Constants of the Crazyflie 2.x from ``cf2x.urdf`` of gym-pybullet-drones (MIT).

    Attributes:
        asset_path: MJCF file of one Crazyflie (free body ``body_name`` with sites ``rotor0..3``).
        body_name: Name of the free body.
        mass_kg: Nominal mass, 0.027 kg (cf2x.urdf); the MJCF's mass must match.
        thrust_to_weight: Nominal thrust-to-weight ratio of the four rotors at full command, 2.25 (cf2x.urdf).
        kf: Rotor thrust coefficient, 3.16e-10 N/(rad/s)² (cf2x.urdf).
        km: Rotor drag-torque coefficient, 7.94e-12 N·m/(rad/s)² (cf2x.urdf).
        rotor_spin: Yaw-torque sign of rotors 0..3 (gym-pybullet-drones: τ_z = km(-ω0² + ω1² - ω2² + ω3²)).
        motor_tau_s: Time constant of the first-order rotor-speed lag, seconds (a design choice of the order of
            the Crazyflie's brushed motors; not a measured constant).
        mass_range_kg: Per-episode uniform domain randomisation of the mass (covers the 29 g CF2.1 of Bitcraze's
            firmware). Set both ends equal to disable.
        thrust_to_weight_range: Per-episode uniform randomisation of the thrust-to-weight ratio.
    """

    asset_path: str = str(asset_path("crazyflie/cf2x.xml"))
    body_name: str = "cf2x"
    mass_kg: float = 0.027
    thrust_to_weight: float = 2.25
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
        distance_coarse: Weight of ``1 - tanh(d / 0.8)`` (Isaac Lab's distance term, weight 15).
        distance_fine: Weight of ``1 - tanh(d / 0.1)`` (sharpens the last 10 cm).
        lin_vel: Weight of ``|v|²`` (Isaac Lab: -0.05).
        ang_vel: Weight of ``|ω|²`` (Isaac Lab: -0.01).
        crash: One-off reward on a crash (not scaled by ``step_dt``).
    """

    distance_coarse: float = 15.0
    distance_fine: float = 5.0
    lin_vel: float = -0.05
    ang_vel: float = -0.01
    crash: float = -10.0


@dataclass
class PointCtrlEnvCfg(DirectRLEnvCfg):
    """Point-control task config. ``observation_space`` is the ``policy`` group's size (22), teacher's is 28.

    Attributes:
        robot, init, goal, noise, rewards: See their classes.
        min_height_m, max_height_m: The episode terminates (crash) outside this height band.
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


class PointCtrlEnv(DirectRLEnv):
    """Crazyflie point control; observation groups ``policy`` (22) and ``teacher`` (28), 4 actions.

    ``policy`` (deployable): noisy goal position error in body frame (3, m), noisy linear velocity in body frame
    (3, m/s), rotation matrix body→world row-major (9), noisy gyro (3, rad/s), last action (4).
    ``teacher`` (privileged): exact position error (3) and velocity (3) in body frame, rotation matrix (9), body
    rates (3), last action (4), rotor speeds ω/ω_max (4), mass / nominal mass (1), thrust-to-weight (1).
    """

    cfg: PointCtrlEnvCfg

    def __init__(self, cfg: PointCtrlEnvCfg, render_mode: str | None = None, **kwargs) -> None:
        super().__init__(cfg, render_mode, **kwargs)
        n, dev = self.num_envs, self.device
        rc = cfg.robot
        self._actions = torch.zeros(n, 4, device=dev)
        self._rotor_speed = torch.zeros(n, 4, device=dev)  # ω / ω_max, in [0, 1]
        self._goal_pos = torch.zeros(n, 3, device=dev)  # env frame
        self._mass = torch.full((n,), rc.mass_kg, device=dev)
        self._thrust_to_weight = torch.full((n,), rc.thrust_to_weight, device=dev)
        self._crashed = torch.zeros(n, dtype=torch.bool, device=dev)
        self._motor_alpha = 1.0 - math.exp(-cfg.sim.dt / rc.motor_tau_s)
        site_ids = [self.sim.site_names.index(f"rotor{i}") for i in range(4)]
        rotor_xy = torch.as_tensor(self.sim.model.site_pos[site_ids, :2], dtype=torch.float32, device=dev)
        spin = torch.tensor(rc.rotor_spin, device=dev)
        # (3, 4) map from rotor thrusts (N) to body torques (N·m): τx = Σ y f, τy = -Σ x f, τz = Σ spin km/kf f.
        self._mixer = torch.stack([rotor_xy[:, 1], -rotor_xy[:, 0], spin * rc.km / rc.kf])
        self._episode_sums = {k: torch.zeros(n, device=dev) for k in
                              ("distance_coarse", "distance_fine", "lin_vel", "ang_vel", "crash")}
        self._dof = self.sim.model.body_dofadr[self.sim.model.body(rc.body_name).id]
        self._qadr = self.sim.model.jnt_qposadr[self.sim.model.body_jntadr[self.sim.model.body(rc.body_name).id]]
        self.reset()

    def observation_sizes(self) -> dict[str, int]:
        return {"policy": 22, "teacher": 28}

    # -------------------------------------------------------------------------------------------------- scene
    def _setup_scene(self) -> mujoco.MjSpec:
        spec = mujoco.MjSpec.from_file(self.cfg.robot.asset_path)
        model = spec.copy().compile()
        body = model.body(self.cfg.robot.body_name)
        if abs(body.mass[0] - self.cfg.robot.mass_kg) > 1e-9:
            raise ValueError(f"MJCF mass {body.mass[0]} kg of '{self.cfg.robot.body_name}' differs from "
                             f"robot.mass_kg={self.cfg.robot.mass_kg}.")
        return spec

    # ------------------------------------------------------------------------------------------------ actions
    def _pre_physics_step(self, actions: torch.Tensor) -> None:
        self._actions = actions.clamp(-1.0, 1.0)
        self._speed_cmd = torch.sqrt((self._actions + 1.0) * 0.5)

    def _apply_action(self) -> None:
        self._rotor_speed += self._motor_alpha * (self._speed_cmd - self._rotor_speed)
        max_thrust = self._thrust_to_weight * self._mass * GRAVITY / 4.0  # N per rotor, this env's values
        thrust = max_thrust.unsqueeze(1) * self._rotor_speed.square()  # (N, 4) N
        torque_b = thrust @ self._mixer.T  # (N, 3) N·m, body frame
        rot = quat_to_rotmat(self._root_quat())
        force_w = rot[:, :, 2] * thrust.sum(dim=1, keepdim=True)  # body z in world
        scale = (self.cfg.robot.mass_kg / self._mass).unsqueeze(1)  # equivalent-mass scaling (module docstring)
        wrench = torch.cat([force_w * scale, torque_b * scale], dim=1)
        self.sim.qfrc_applied[:, self._dof:self._dof + 6] = wrench.to(self.sim.qfrc_applied.dtype)

    # ------------------------------------------------------------------------------------------- state access
    def _root_pos(self) -> torch.Tensor:
        """(N, 3) env-frame position, m."""
        return self.sim.qpos[:, self._qadr:self._qadr + 3].float() - self.sim.env_origins

    def _root_quat(self) -> torch.Tensor:
        """(N, 4) orientation (w, x, y, z)."""
        return self.sim.qpos[:, self._qadr + 3:self._qadr + 7].float()

    def _root_vel(self) -> tuple[torch.Tensor, torch.Tensor]:
        """World-frame linear velocity (N, 3) m/s and body-frame angular velocity (N, 3) rad/s."""
        qvel = self.sim.qvel[:, self._dof:self._dof + 6].float()
        return qvel[:, :3], qvel[:, 3:]

    def distance_to_goal(self) -> torch.Tensor:
        """(N,) distance between the body and its goal, m."""
        return torch.linalg.norm(self._goal_pos - self._root_pos(), dim=1)

    # -------------------------------------------------------------------------------------------- observations
    def _get_observations(self) -> dict[str, torch.Tensor]:
        rot = quat_to_rotmat(self._root_quat())  # body → world
        rot_t = rot.transpose(1, 2)
        lin_vel_w, ang_vel_b = self._root_vel()
        pos_err_b = (rot_t @ (self._goal_pos - self._root_pos()).unsqueeze(-1)).squeeze(-1)
        lin_vel_b = (rot_t @ lin_vel_w.unsqueeze(-1)).squeeze(-1)
        rot_flat = rot.reshape(-1, 9)
        nc = self.cfg.noise
        teacher = torch.cat([pos_err_b, lin_vel_b, rot_flat, ang_vel_b, self._actions, self._rotor_speed,
                             (self._mass / self.cfg.robot.mass_kg).unsqueeze(1),
                             self._thrust_to_weight.unsqueeze(1)], dim=1)
        policy = torch.cat([pos_err_b + nc.pos_m * self._randn(3), lin_vel_b + nc.lin_vel_mps * self._randn(3),
                            rot_flat, ang_vel_b + nc.gyro_radps * self._randn(3), self._actions], dim=1)
        return {"policy": policy, "teacher": teacher}

    # -------------------------------------------------------------------------------------------------- rewards
    def _get_rewards(self) -> torch.Tensor:
        rc = self.cfg.rewards
        d = self.distance_to_goal()
        lin_vel_w, ang_vel_b = self._root_vel()
        terms = {
            "distance_coarse": rc.distance_coarse * (1.0 - torch.tanh(d / 0.8)) * self.step_dt,
            "distance_fine": rc.distance_fine * (1.0 - torch.tanh(d / 0.1)) * self.step_dt,
            "lin_vel": rc.lin_vel * lin_vel_w.square().sum(dim=1) * self.step_dt,
            "ang_vel": rc.ang_vel * ang_vel_b.square().sum(dim=1) * self.step_dt,
            "crash": rc.crash * self._crashed.float(),
        }
        for name, value in terms.items():
            self._episode_sums[name] += value
        return torch.stack(list(terms.values())).sum(dim=0)

    # ---------------------------------------------------------------------------------------------------- dones
    def _get_dones(self) -> tuple[torch.Tensor, torch.Tensor]:
        z = self._root_pos()[:, 2]
        self._crashed = (z < self.cfg.min_height_m) | (z > self.cfg.max_height_m)
        time_out = self.episode_length_buf >= self.max_episode_length
        return self._crashed, time_out

    # ---------------------------------------------------------------------------------------------------- reset
    def _reset_idx(self, env_ids: torch.Tensor) -> None:
        if self._goal_pos is not None and len(env_ids) > 0 and self.episode_length_buf[env_ids].max() > 0:
            self._log_episodes(env_ids)
        super()._reset_idx(env_ids)
        k, dev, c = len(env_ids), self.device, self.cfg
        self._goal_pos[env_ids, :2] = self._uniform(k, 2, *c.goal.xy_range_m)
        self._goal_pos[env_ids, 2] = self._uniform(k, 1, *c.goal.z_range_m).squeeze(1)
        self._mass[env_ids] = self._uniform(k, 1, *c.robot.mass_range_kg).squeeze(1)
        self._thrust_to_weight[env_ids] = self._uniform(k, 1, *c.robot.thrust_to_weight_range).squeeze(1)
        self._actions[env_ids] = 0.0
        self._rotor_speed[env_ids] = 0.0
        self._crashed[env_ids] = False
        for v in self._episode_sums.values():
            v[env_ids] = 0.0

        tilt = self._uniform(k, 2, -c.init.max_tilt_rad, c.init.max_tilt_rad)
        yaw = self._uniform(k, 1, -math.pi, math.pi).squeeze(1)
        qpos = self.sim.qpos[env_ids].clone().float()
        qpos[:, self._qadr:self._qadr + 3] = torch.tensor(c.init.pos_m, device=dev) + self.sim.env_origins[env_ids]
        qpos[:, self._qadr + 3:self._qadr + 7] = quat_from_euler_xyz(tilt[:, 0], tilt[:, 1], yaw)
        qvel = torch.zeros(k, self.sim.model.nv, device=dev)
        qvel[:, self._dof:self._dof + 3] = self._uniform(k, 3, -c.init.max_lin_vel_mps, c.init.max_lin_vel_mps)
        qvel[:, self._dof + 3:self._dof + 6] = self._uniform(k, 3, -c.init.max_ang_vel_radps,
                                                             c.init.max_ang_vel_radps)
        self.sim.write_state(env_ids, qpos, qvel)

    def _log_episodes(self, env_ids: torch.Tensor) -> None:
        """Put the metrics of the episodes ending in ``env_ids`` into ``extras["log"]``."""
        log = self.extras.setdefault("log", {})
        for name, value in self._episode_sums.items():
            log[f"Episode_Reward/{name}"] = (value[env_ids] / self.cfg.episode_length_s).mean().item()
        crashed = self._crashed[env_ids]
        timed_out = ~crashed
        d = self.distance_to_goal()[env_ids]
        success = timed_out & (d < self.cfg.goal.success_radius_m)
        self.extras["episode_outcomes"] = {"env_ids": env_ids, "success": success, "crash": crashed,
                                           "final_distance": d}
        log["Episode_Metric/success"] = success.float().mean().item()
        log["Episode_Metric/crash"] = crashed.float().mean().item()
        if timed_out.any():
            log["Episode_Metric/final_distance"] = d[timed_out].mean().item()

    # ---------------------------------------------------------------------------------------------------- utils
    def _uniform(self, rows: int, cols: int, low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(rows, cols, generator=self.generator, device=self.device)

    def _randn(self, cols: int) -> torch.Tensor:
        return torch.randn(self.num_envs, cols, generator=self.generator, device=self.device)
