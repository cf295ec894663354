"""Point control of a Crazyflie 2.x: fly from a random, tilted, spinning start to a goal point and hold it there.

Reads like Isaac Lab's ``Isaac-Quadcopter-Direct-v0`` (same sim dt, decimation, episode length, goal ranges and
reward shape), with per-motor actions through a first-order rotor lag instead of a direct body wrench.

Actuation chain, per physics step (``_apply_action``):

    action a_i ∈ [-1, 1]  →  commanded thrust fraction c_i = (a_i + 1) / 2
    the command reaches the motor L physics steps late (actuation latency, L drawn per episode)
    rotor speed s_i = ω_i / ω_max follows √c_i with a first-order lag (time constant τ, drawn per episode)
    rotor thrust f_i = k_f ω_i² = T_max,i s_i²,   T_max,i = k_i · thrust_to_weight · m_v · g / 4
    rotor yaw torque q_i = spin_i (k_m / k_f) f_i
    X mixer: body torque τ = Σ r_i × f_i ẑ + Σ q_i ẑ (r_i: the MJCF's rotor sites); force = R Σ f_i ẑ (world)
    plus a gust: a world-frame force on the body, drawn as a random process (``DisturbanceCfg``)

with m_v the vehicle's mass, k_i the per-motor strength (1 nominal) and m = m_v + payload the flying mass. A
constant command c on every motor settles at total thrust ``c · T/W · m g`` with the real thrust-to-weight ratio
T/W = mean(k) · thrust_to_weight · m_v / m, checked by ``tests/tasks/test_point_ctrl.py``.

Domain randomisation draws, per episode, every factor of ``CrazyflieCfg`` whose range has two different ends
(equal ends disable it and draw nothing, so with every range collapsed to the nominal values the random stream and
the dynamics are exactly those of the task without these factors: ``tests/tasks/test_point_ctrl_randomization.py``).
Mass (vehicle and payload) sits at the centre of mass, so the inertia stays the MJCF's. The N environments of the
MuJoCo C backend share one compiled model of nominal mass m₀, so the mass enters as the dynamically equivalent
force: the applied force (thrust and gust) is scaled by m₀ / m (the acceleration is then exactly that of mass m)
and the torque is applied unscaled (inertia unchanged). Forces go through ``qfrc_applied`` (the free joint's
translational dofs are world-frame), never ``xfrc_applied``, whose cost is O(N²) in one big model (DESIGN §5).
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass, field

import mujoco
import torch

from foundation.assets import asset_path
from foundation.envs import DirectRLEnv, DirectRLEnvCfg, SceneCfg, SimCfg, SpawnCfg
from foundation.sim import load_spec
from foundation.utils.config import FieldChecks
from foundation.utils.math import matrix_from_quat, quat_from_euler_xyz

GRAVITY = 9.81  # m/s², the MJCF's gravity
IMU_ACCELEROMETER = "imu_accelerometer"  # the accelerometer the task adds at ``CrazyflieCfg.imu_site``
#: Seed of the accelerometer's noise generator = env seed + this: far from the small offsets other seeds of a run
#: use (``env.seed + rank`` of a data-parallel process, the evaluations' ``seed + 1``, ``+ 2``), so no two streams
#: of a run coincide; below 2³² because torch's CPU generator keeps only a seed's low 32 bits.
IMU_SEED_OFFSET = 0x9E3779B9


@dataclass
class CrazyflieCfg:
    """The quadrotor. Constants of the Crazyflie 2.x from ``cf2x.urdf`` of gym-pybullet-drones (MIT).

    The ``*_range*`` fields are per-episode domain randomisation, each factor uniform in its range; both ends equal
    disable a factor (nothing is drawn for it). They cover what a real Crazyflie has and the nominal model lacks: a
    policy trained without them crashed with one physics step of delay or τ = 0.05 s (issue 8).

    Attributes:
        asset_path: MJCF file of one Crazyflie (free body ``body_name`` with sites ``rotor0..3``).
        spawn: ``spawn.usd_path``, Isaac Lab's key: load the Crazyflie from this USD file instead
            (``USD/crazyflie/cf2x.usda``, exported from ``asset_path``).
        body_name: Name of the free body.
        imu_site: Site at the centre of mass where the task adds the accelerometer of the ``policy`` group.
        mass_kg: Nominal mass, 0.027 kg (cf2x.urdf); the MJCF's mass must match.
        kf: Rotor thrust coefficient, 3.16e-10 N/rpm² (cf2x.urdf; gym-pybullet-drones applies it to rpm).
        km: Rotor drag-torque coefficient, 7.94e-12 N·m/rpm² (cf2x.urdf). Only km / kf = 0.0251 m is used (yaw
            torque per newton of thrust), which is unit-free in the speed.
        rotor_spin: Sign of each rotor's yaw torque on the body, rotors 0..3 = motors M1..M4 (gym-pybullet-drones:
            τ_z = km(-ω0² + ω1² - ω2² + ω3²); M1, M3 spin counter-clockwise seen from above).
        motor_tau_s: Nominal time constant of the first-order rotor-speed lag, seconds (a design choice of the
            order of the Crazyflie's brushed motors; not a measured constant).
        mass_range_kg: Mass m_v of the vehicle itself, without payload: a different build (the 29 g CF2.1 of
            Bitcraze's firmware, battery variants). Its motors scale with it: thrust at full command is
            ``thrust_to_weight · m_v · g``.
        thrust_to_weight_range: Thrust-to-weight ratio of the vehicle without payload, centred on cf2x.urdf's
            2.25 (motor and battery wear, propellers).
        payload_range_kg: Payload carried on the same motors (a deck, a camera, a bigger battery), at the centre of
            mass: the flying mass grows and the real thrust-to-weight ratio falls by m_v / (m_v + payload). Up to
            +10 g on 27 g (T/W 2.25 → 1.64; with the lowest vehicle T/W, 2.0 · 25 / 35 = 1.43, still 30 % of
            margin above hover).
        motor_strength_range: Per-motor factor k_i on the full-command thrust, drawn independently for each rotor
            (motors and propellers of one vehicle differ by several percent).
        motor_tau_scale_range: Factor on ``motor_tau_s`` for the episode's rotor time constant:
            (2/3, 2) gives τ ∈ [0.02, 0.06] s around the nominal 0.03 s (brushed motors with different
            propellers and battery charge; 0.05 s crashed a quarter of the untrained-for episodes).
        latency_steps_range: Actuation latency in physics steps, an integer drawn uniformly from the inclusive
            range: the command applied at physics step k is the one the policy gave at step k - L. (0, 3) is
            0–30 ms at the default sim dt of 10 ms: a real Crazyflie has tens of milliseconds between a state
            estimate and the rotors' response (radio, estimator, motor driver).
    """

    asset_path: str = str(asset_path("crazyflie/cf2x.xml"))
    spawn: SpawnCfg = field(default_factory=SpawnCfg)
    body_name: str = "cf2x"
    imu_site: str = "imu"
    mass_kg: float = 0.027
    kf: float = 3.16e-10
    km: float = 7.94e-12
    rotor_spin: tuple[float, float, float, float] = (-1.0, 1.0, -1.0, 1.0)
    motor_tau_s: float = 0.03
    mass_range_kg: tuple[float, float] = (0.025, 0.030)
    thrust_to_weight_range: tuple[float, float] = (2.0, 2.5)
    payload_range_kg: tuple[float, float] = (0.0, 0.010)
    motor_strength_range: tuple[float, float] = (0.95, 1.05)
    motor_tau_scale_range: tuple[float, float] = (2.0 / 3.0, 2.0)
    latency_steps_range: tuple[int, int] = (0, 3)

    def validate(self) -> None:
        """Raise ``ConfigError`` naming every randomisation range that is not (low, high) with low <= high inside its
        physical domain (masses, thrust-to-weight, strengths and τ scale > 0; payload and latency >= 0; latency in
        whole physics steps)."""
        c = FieldChecks(self, "Crazyflie config")
        for key in ("mass_range_kg", "thrust_to_weight_range", "motor_strength_range", "motor_tau_scale_range"):
            c.range_pair(key, 0.0, closed=False)
        c.range_pair("payload_range_kg", 0.0)
        c.range_pair("latency_steps_range", 0, integer=True)
        c.raise_errors()


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
        accel_mps2: Accelerometer noise, m/s² per axis. The Crazyflie 2.x's BMI088 accelerometer has a noise
            density of the order of 0.2 mg/√Hz (Bosch datasheet), ~0.01 m/s² over a 50 Hz policy step; 0.1 m/s²
            leaves room for propeller vibration after the firmware's low-pass filter (a choice, not a measurement).
            Drawn from the env's second generator (see ``PointCtrlEnv.reset``).
    """

    pos_m: float = 0.01
    lin_vel_mps: float = 0.05
    gyro_radps: float = 0.02
    accel_mps2: float = 0.1


@dataclass
class DisturbanceCfg:
    """External force disturbances ("gusts"): a world-frame horizontal force on the body's centre of mass.

    Each policy step, an env without a gust starts one with probability ``1 - exp(-rate_hz · step_dt)`` (a Poisson
    process), of magnitude ~U(force_range_mg) · m₀ g (m₀ the nominal mass: a gust's force does not depend on the
    vehicle's mass), horizontal direction ~U(0, 2π) and duration ~U(duration_range_s) (rounded to policy steps, at
    least one), unless it would end later than ``quiet_end_s`` before the episode's end (an episode is judged by
    where it ends: it must have time to recover). Horizontal, because wind near the ground is mostly horizontal and
    the thrust already covers the vertical axis. 0.3 m₀ g is a strong gust for a 27 g vehicle (it tilts ~17° to
    hold against it).

    Attributes:
        rate_hz: Mean number of gust starts per second while no gust acts; 0 disables gusts (nothing is drawn).
        force_range_mg: Magnitude range, in units of the nominal weight m₀ g; (0, 0) disables gusts.
        duration_range_s: Duration range, seconds.
        quiet_end_s: No gust acts in the last ``quiet_end_s`` seconds of an episode.
    """

    rate_hz: float = 0.5
    force_range_mg: tuple[float, float] = (0.0, 0.3)
    duration_range_s: tuple[float, float] = (0.1, 0.5)
    quiet_end_s: float = 1.0

    def validate(self) -> None:
        """Raise ``ConfigError`` naming every negative rate, time or range end, and every range with low > high."""
        c = FieldChecks(self, "gust config")
        for key in ("force_range_mg", "duration_range_s"):
            c.range_pair(key, 0.0)
        for key in ("rate_hz", "quiet_end_s"):
            c.at_least(key, 0.0)
        c.raise_errors()


@dataclass
class RewardCfg:
    """Reward weights; each term is multiplied by ``step_dt`` (Isaac Lab's convention).

    Attributes:
        distance_coarse: Weight of ``1 - tanh(d / distance_coarse_scale_m)`` (Isaac Lab's distance term: 15, 0.8 m).
        distance_fine: Weight of ``1 - tanh(d / distance_fine_scale_m)`` (sharpens the last centimetres; 10 rather
            than 5 since the action-rate penalty makes the last small corrections cost something).
        distance_coarse_scale_m, distance_fine_scale_m: Length scales of the two distance terms, metres.
        lin_vel: Weight of ``|v|²`` (Isaac Lab: -0.05).
        ang_vel: Weight of ``|ω|²`` (Isaac Lab: -0.01). -0.05: with -0.01 and the randomisation, a teacher learnt to
            hover spinning at 1.5 rad/s about its z axis, which with the actuation lags left a 3.5 cm steady offset.
        action_rate: Weight of ``|a_t - a_{t-1}|²`` (Isaac Lab's ``action_rate_l2``; a_{-1} = 0 at a reset). Without
            it the policies chattered (mean |Δa| 0.42–0.48 of a command's range per step, 4 % of motor steps from
            one limit to the other), which a real motor driver and propeller neither follow nor survive. A
            penalty rather than a low-pass filter on the actions: a filter adds phase lag on top of the actuation
            latency, the penalty lets the policy decide where it needs fast changes. Teachers trained with -1.0 and
            -0.25 chattered at 0.007 and 0.018 at nominal (far below 0.12) and crashed in 2 % and 5 % of episodes of
            the training distribution: the smoother policy copes better with the lags; -0.5 lies between.
        crash: One-off reward on a crash (not scaled by ``step_dt``).
    """

    distance_coarse: float = 15.0
    distance_fine: float = 10.0
    distance_coarse_scale_m: float = 0.8
    distance_fine_scale_m: float = 0.1
    lin_vel: float = -0.05
    ang_vel: float = -0.05
    action_rate: float = -0.5
    crash: float = -10.0


@dataclass
class PointCtrlEnvCfg(DirectRLEnvCfg):
    """Point-control task config. ``observation_space`` is the ``policy`` group's size (25), teacher's is 41.

    Attributes:
        robot, init, goal, noise, gusts, rewards: See their classes.
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
    observation_space: int = 25
    action_space: int = 4
    robot: CrazyflieCfg = field(default_factory=CrazyflieCfg)
    init: InitCfg = field(default_factory=InitCfg)
    goal: GoalCfg = field(default_factory=GoalCfg)
    noise: NoiseCfg = field(default_factory=NoiseCfg)
    gusts: DisturbanceCfg = field(default_factory=DisturbanceCfg)
    rewards: RewardCfg = field(default_factory=RewardCfg)
    min_height_m: float = 0.1
    max_height_m: float = 2.0
    max_abs_qpos: float | None = 1000.0
    max_abs_qvel: float | None = 1000.0


class PointCtrlEnv(DirectRLEnv):
    """Crazyflie point control; observation groups ``policy`` (25) and ``teacher`` (41), 4 actions.

    ``teacher`` (privileged), in order: exact goal position error in body frame (3, m), linear velocity in body
    frame (3, m/s), body rates (3, rad/s), rotation matrix body→world row-major (9), last action (4), rotor speeds
    ω/ω_max (4), flying mass / nominal mass (1), real thrust-to-weight ratio T/W (1; see the module docstring),
    the action before the last (4: with latency, both are still on their way to the motors), latency in physics
    steps (1), rotor time constant / nominal (1), per-motor strengths (4), the gust force of the last step in the
    world frame / m₀ g (3).
    ``policy`` (deployable) is the first 22 entries of ``teacher`` with Gaussian noise on the first 9 (a real
    Crazyflie's position estimate, velocity estimate and gyro), then the accelerometer (3, m/s², body frame, with
    noise): the specific force (thrust + gust) / m that the IMU at the centre of mass measures, +g along body z in
    a hover, 0 in free fall. It is MuJoCo's ``accelerometer`` sensor at ``robot.imu_site`` (added by the task to
    whichever asset it loads), computed at the start of the last physics step, so up to one step (10 ms) old, like
    an IMU sample; it reads 0 in the observation that starts an episode (rotors stopped, nothing stepped yet). No
    motor state, no physical parameters, no disturbance: the recurrent student infers them from the history of its
    observations and its own actions, and the accelerometer shows it within a step how much thrust per unit mass
    its commands produce (the thrust-to-weight ratio, the payload, the rotor lag and latency). Without it, a student
    on the other 22 entries crashed in 5.86 % of the training distribution's episodes against the teacher's 2.69 %,
    mostly with 30 ms of latency and slow rotors (README).

    The hot path (``_apply_action``, ``_get_observations``, ``_get_rewards``) uses a handful of batched tensor ops:
    at 1024 envs, torch call overhead, not arithmetic, is the cost next to ``mj_step``.
    """

    cfg: PointCtrlEnvCfg

    def __init__(self, cfg: PointCtrlEnvCfg, render_mode: str | None = None, **kwargs) -> None:
        if (cfg.observation_space, cfg.action_space) != (25, 4):
            raise ValueError(f"Point control has a 25-D 'policy' observation and 4 actions; got observation_space="
                             f"{cfg.observation_space}, action_space={cfg.action_space}.")
        self._imu_generator = torch.Generator(device=cfg.sim.device)
        self._imu_generator.manual_seed(cfg.seed + IMU_SEED_OFFSET if cfg.seed is not None else secrets.randbits(63))
        super().__init__(cfg, render_mode, **kwargs)
        n, dev, rc = self.num_envs, self.device, cfg.robot
        model = self.sim.model
        body = model.body(rc.body_name).id
        self._dof = int(model.body_dofadr[body])  # free joint: dofs [v_world (3), ω_body (3)]
        self._qadr = int(model.jnt_qposadr[model.body_jntadr[body]])  # qpos [p_world (3), q_wxyz (4)]
        self._actions = torch.zeros(n, 4, device=dev)
        self._prev_actions = torch.zeros(n, 4, device=dev)  # the action before self._actions
        self._speed_cmd = torch.zeros(n, 4, device=dev)
        self._rotor_speed = torch.zeros(n, 4, device=dev)  # ω / ω_max, in [0, 1]
        self._goal_pos = torch.zeros(n, 3, device=dev)  # env frame, m
        self._params = torch.zeros(n, 2, device=dev)  # [mass / nominal mass, real thrust-to-weight]
        self._dr_obs = torch.zeros(n, 6, device=dev)  # [latency steps, τ / nominal τ, motor strengths (4)]
        self._thrust_max = torch.zeros(n, 4, device=dev)  # N per rotor at full speed
        self._force_scale = torch.ones(n, 1, device=dev)  # nominal mass / mass (see module docstring)
        self._crashed = torch.zeros(n, dtype=torch.bool, device=dev)
        self._motor_alpha = torch.zeros(n, 1, device=dev)  # exact first-order lag per physics step, 1 - exp(-dt/τ)
        # Actuation latency: a ring of the last (max latency + 1) speed commands per env, one slot per physics step.
        self._latency = torch.zeros(n, dtype=torch.long, device=dev)
        self._cmd_ring = torch.zeros(n, rc.latency_steps_range[1] + 1, 4, device=dev)
        self._ring_pos = 0
        self._env_index = torch.arange(n, device=dev)
        gc = cfg.gusts
        self._gusts_on = gc.rate_hz > 0.0 and gc.force_range_mg[1] > 0.0
        self._gust_force = torch.zeros(n, 3, device=dev)  # world frame, N
        self._gust_steps_left = torch.zeros(n, dtype=torch.long, device=dev)
        self._gust_start_prob = 1.0 - math.exp(-gc.rate_hz * self.step_dt)
        self._gust_last_end = self.max_episode_length - round(gc.quiet_end_s / self.step_dt)
        weight0 = rc.mass_kg * GRAVITY
        self._gust_draw_low = torch.tensor([gc.force_range_mg[0] * weight0, gc.duration_range_s[0] / self.step_dt],
                                           device=dev)
        self._gust_draw_span = torch.tensor([(gc.force_range_mg[1] - gc.force_range_mg[0]) * weight0,
                                             (gc.duration_range_s[1] - gc.duration_range_s[0]) / self.step_dt],
                                            device=dev)
        rotor_ids = [self.sim.site_names.index(f"rotor{i}") for i in range(4)]
        rotor_xy = torch.as_tensor(model.site_pos[rotor_ids, :2], dtype=torch.float32, device=dev)
        spin = torch.tensor(rc.rotor_spin, device=dev)
        # (4, 4): rotor thrusts (N) → [total thrust (N), τx, τy, τz (N·m)] in the body frame (X mixer):
        # τx = Σ y_i f_i, τy = -Σ x_i f_i, τz = Σ spin_i (km / kf) f_i.
        self._thrust_to_wrench = torch.stack(
            [torch.ones(4, device=dev), rotor_xy[:, 1], -rotor_xy[:, 0], spin * rc.km / rc.kf], dim=1)
        rw = cfg.rewards
        self._reward_names = ("distance_coarse", "distance_fine", "lin_vel", "ang_vel", "action_rate", "crash")
        self._reward_weights = torch.tensor([rw.distance_coarse * self.step_dt, rw.distance_fine * self.step_dt,
                                             rw.lin_vel * self.step_dt, rw.ang_vel * self.step_dt,
                                             rw.action_rate * self.step_dt, rw.crash], device=dev)
        self._episode_sums = torch.zeros(n, len(self._reward_names), device=dev)
        nc = cfg.noise
        self._accel_cols = self.sim.sensor_slice(IMU_ACCELEROMETER)
        self._accel_valid = torch.zeros(n, dtype=torch.bool, device=dev)
        self._accel_noise_std = nc.accel_mps2
        self._noise_std = torch.tensor([nc.pos_m] * 3 + [nc.lin_vel_mps] * 3 + [nc.gyro_radps] * 3, device=dev)
        # Per-episode random draws, as (low, high) columns: goal xyz, mass, thrust-to-weight, roll, pitch, yaw,
        # linear velocity xyz, body rates xyz.
        ic, gc = cfg.init, cfg.goal
        bounds = [gc.xy_range_m, gc.xy_range_m, gc.z_range_m, rc.mass_range_kg, rc.thrust_to_weight_range,
                  (-ic.max_tilt_rad, ic.max_tilt_rad), (-ic.max_tilt_rad, ic.max_tilt_rad), (-math.pi, math.pi)]
        bounds += [(-ic.max_lin_vel_mps, ic.max_lin_vel_mps)] * 3 + [(-ic.max_ang_vel_radps, ic.max_ang_vel_radps)] * 3
        self._draw_low = torch.tensor([b[0] for b in bounds], device=dev)
        self._draw_span = torch.tensor([b[1] - b[0] for b in bounds], device=dev)
        # The factors added for issue 8, drawn by a second call only if one of them is enabled (then the first
        # draw, hence every earlier factor, stays what it was without them): payload, τ scale, latency (an integer:
        # floor of U(low, high + 1), clamped), motor strengths (4).
        lat = rc.latency_steps_range
        dr_bounds = [rc.payload_range_kg, rc.motor_tau_scale_range, (lat[0], lat[1] + (lat[1] > lat[0]))]
        dr_bounds += [rc.motor_strength_range] * 4
        self._dr_low = torch.tensor([b[0] for b in dr_bounds], dtype=torch.float64, device=dev)
        self._dr_span = torch.tensor([b[1] - b[0] for b in dr_bounds], dtype=torch.float64, device=dev)
        self._start_pos = torch.tensor(ic.pos_m, device=dev)
        self._weight0 = weight0
        self.reset()

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict[str, torch.Tensor], dict]:
        """``DirectRLEnv.reset``; ``seed`` also reseeds the accelerometer's noise (its own generator, seeded with
        ``seed + IMU_SEED_OFFSET``: the sensor leaves every other random draw, hence the teacher's training, as it
        was)."""
        if seed is not None:
            self._imu_generator.manual_seed(seed + IMU_SEED_OFFSET)
        return super().reset(seed, options)

    def observation_sizes(self) -> dict[str, int]:
        """``{"policy": 25, "teacher": 41}``."""
        return {"policy": 25, "teacher": 41}

    # -------------------------------------------------------------------------------------------------- scene
    def _setup_scene(self):  # -> mujoco.MjSpec (see DirectRLEnv._setup_scene)
        spec = load_spec(self.cfg.robot.spawn.usd_path or self.cfg.robot.asset_path)
        body = spec.copy().compile().body(self.cfg.robot.body_name)
        if abs(body.mass[0] - self.cfg.robot.mass_kg) > 1e-9:
            raise ValueError(f"MJCF mass {body.mass[0]} kg of '{self.cfg.robot.body_name}' differs from "
                             f"robot.mass_kg={self.cfg.robot.mass_kg}.")
        spec.add_sensor(name=IMU_ACCELEROMETER, type=mujoco.mjtSensor.mjSENS_ACCELEROMETER,
                        objtype=mujoco.mjtObj.mjOBJ_SITE, objname=self.cfg.robot.imu_site)
        return spec

    # ------------------------------------------------------------------------------------------------ actions
    def _pre_physics_step(self, actions: torch.Tensor) -> None:
        self._prev_actions = self._actions
        self._actions = actions.clamp(-1.0, 1.0)
        self._accel_valid.fill_(True)  # the physics steps that follow compute every env's accelerometer
        torch.sqrt((self._actions + 1.0) * 0.5, out=self._speed_cmd)
        if self._gusts_on:
            self._update_gusts()

    def _update_gusts(self) -> None:
        """Advance the gust process by one policy step (see ``DisturbanceCfg``): end expired gusts, start new ones."""
        n = self.num_envs
        u = torch.rand(n, 4, generator=self.generator, device=self.device)
        self._gust_steps_left.sub_(1).clamp_(min=0)
        magnitude, steps = (self._gust_draw_low + self._gust_draw_span * u[:, 1:3]).unbind(1)
        steps = steps.round().long().clamp_(min=1)
        start = ((self._gust_steps_left == 0) & (u[:, 0] < self._gust_start_prob)
                 & (self.episode_length_buf + steps <= self._gust_last_end))
        angle = 2.0 * math.pi * u[:, 3]
        force = torch.stack([magnitude * torch.cos(angle), magnitude * torch.sin(angle), torch.zeros_like(angle)], 1)
        self._gust_force = torch.where(start[:, None], force,
                                       self._gust_force * (self._gust_steps_left > 0)[:, None])
        self._gust_steps_left = torch.where(start, steps, self._gust_steps_left)

    def _apply_action(self) -> None:
        ring = self._cmd_ring
        ring[:, self._ring_pos] = self._speed_cmd  # the command of this physics step, applied L steps later
        delayed_cmd = ring[self._env_index, (self._ring_pos - self._latency) % ring.shape[1]]
        self._ring_pos = (self._ring_pos + 1) % ring.shape[1]
        self._rotor_speed.lerp_(delayed_cmd, self._motor_alpha)
        thrust = self._rotor_speed.square() * self._thrust_max  # (N, 4) N
        wrench_b = thrust @ self._thrust_to_wrench  # (N, 4) [F, τx, τy, τz], body frame
        w, x, y, z = self._root_quat().unbind(1)
        body_z_w = torch.stack([2 * (x * z + w * y), 2 * (y * z - w * x), 1 - 2 * (x * x + y * y)], dim=1)
        qfrc = self.sim.qfrc_applied
        # (thrust + gust) · m₀/m, written so that a zero gust leaves the thrust term's bits unchanged
        qfrc[:, self._dof:self._dof + 3] = torch.addcmul(body_z_w * (wrench_b[:, :1] * self._force_scale),
                                                         self._gust_force, self._force_scale)
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
        teacher = torch.cat([vecs_b, qvel[:, 3:], rot.flatten(1), self._actions, self._rotor_speed, self._params,
                             self._prev_actions, self._dr_obs, self._gust_force / self._weight0], dim=1)
        noise = torch.randn(self.num_envs, 9, generator=self.generator, device=self.device)
        accel = self.sim.sensordata[:, self._accel_cols].float() * self._accel_valid[:, None]
        accel_noise = torch.randn(self.num_envs, 3, generator=self._imu_generator, device=self.device)
        policy = torch.cat([torch.addcmul(teacher[:, :9], noise, self._noise_std), teacher[:, 9:22],
                            accel + self._accel_noise_std * accel_noise], dim=1)
        return {"policy": policy, "teacher": teacher}

    # -------------------------------------------------------------------------------------------------- rewards
    def _get_rewards(self) -> torch.Tensor:
        d = self.distance_to_goal()
        qvel = self.sim.qvel[:, self._dof:self._dof + 6].float().square()
        rc = self.cfg.rewards
        action_rate = (self._actions - self._prev_actions).square().sum(1)
        terms = torch.stack([1.0 - torch.tanh(d / rc.distance_coarse_scale_m),
                             1.0 - torch.tanh(d / rc.distance_fine_scale_m), qvel[:, :3].sum(1),
                             qvel[:, 3:].sum(1), action_rate, self._crashed.float()], dim=1) * self._reward_weights
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
        if bool((self._dr_span > 0).any()):
            dr = self._dr_low + self._dr_span * torch.rand(k, len(self._dr_low), generator=self.generator,
                                                           device=self.device, dtype=torch.float64)
        else:  # every added factor disabled: nothing drawn
            dr = self._dr_low.expand(k, -1)
        payload, tau = dr[:, 0:1].float(), rc.motor_tau_s * dr[:, 1:2]
        latency = dr[:, 2].floor().long().clamp_(max=rc.latency_steps_range[1])
        strength = dr[:, 3:7].float()
        flying_mass = mass + payload
        self._params[env_ids] = torch.cat([flying_mass / rc.mass_kg,
                                           thrust_to_weight * (mass / flying_mass) * strength.mean(1, keepdim=True)], 1)
        self._thrust_max[env_ids] = thrust_to_weight * mass * GRAVITY / 4.0 * strength
        self._force_scale[env_ids] = rc.mass_kg / flying_mass
        self._motor_alpha[env_ids] = (1.0 - torch.exp(-self.physics_dt / tau)).float()
        self._latency[env_ids] = latency
        self._dr_obs[env_ids] = torch.cat([latency[:, None].float(), (tau / rc.motor_tau_s).float(), strength], 1)
        self._cmd_ring[env_ids] = 0.0
        self._gust_force[env_ids] = 0.0
        self._gust_steps_left[env_ids] = 0
        self._actions[env_ids] = 0.0
        self._prev_actions[env_ids] = 0.0
        self._speed_cmd[env_ids] = 0.0
        self._rotor_speed[env_ids] = 0.0
        self._accel_valid[env_ids] = False  # rotors stopped, no step yet: the accelerometer reads 0 (free fall)
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
