"""rsl-rl runner configs of the gear-assembly task: PPO teacher on ``teacher``, DAgger GRU student on ``policy``."""

from __future__ import annotations

from dataclasses import dataclass, field

from foundation.rsl_rl.runner_cfg import (DAggerAlgorithmCfg, DistillationRunnerCfg, DistributionCfg, EvalCfg, ModelCfg,
                                          PpoAlgorithmCfg, PpoRunnerCfg)


def _teacher_model() -> ModelCfg:
    """[256, 128, 64] ELU MLP with observation normalisation: Isaac Lab's gear-assembly MLP head (its LSTM dropped:
    the privileged ``teacher`` group is Markov). Initial std 0.5 of the [-1, 1] action (a full-scale random action is
    a 1 cm, 0.1 rad step: noise of 1.0 shakes the held gear more than it explores)."""
    return ModelCfg(hidden_dims=[256, 128, 64], activation="elu", obs_normalization=True,
                    distribution_cfg=DistributionCfg(init_std=0.5))


@dataclass
class GearAssemblyPpoRunnerCfg(PpoRunnerCfg):
    """PPO teacher for a CPU budget of about an hour.

    At ~5k env-steps/s of this env at 256 envs (``scripts/benchmark_env.py``, 2-core CPU) and an update as long as the
    rollout, 256 envs × 32 steps per iteration (8192 env-steps, ~4.5 s each with the update) × 600 iterations ≈ 4.9 M
    env-steps ≈ 45–60 min. 32 steps = 1.07 s of the 6 s episode per rollout. lr 5e-4 adaptive (KL 0.008), 5 epochs ×
    4 minibatches of 2048, γ 0.99, λ 0.95: Isaac Lab's gear-assembly values, with fewer epochs and minibatches for
    the CPU. Periodic evaluation on 256 episodes every 25 iterations (each costs one 180-step episode of all envs).
    """

    experiment_name: str = "gear_assembly"
    num_steps_per_env: int = 32
    max_iterations: int = 600
    save_interval: int = 50
    actor: ModelCfg = field(default_factory=_teacher_model)
    critic: ModelCfg = field(default_factory=lambda: ModelCfg(hidden_dims=[256, 128, 64], activation="elu",
                                                              obs_normalization=True, distribution_cfg=None))
    algorithm: PpoAlgorithmCfg = field(default_factory=lambda: PpoAlgorithmCfg(desired_kl=0.008))
    eval: EvalCfg = field(default_factory=lambda: EvalCfg(interval=25, num_episodes=256, final_num_episodes=1024))


@dataclass
class GearAssemblyDistillationRunnerCfg(DistillationRunnerCfg):
    """DAgger GRU student on the deployable ``policy`` group alone; teacher = the PPO actor above (mirrored exactly).

    The GRU (hidden 128) sees no gear pose and only a shaft estimate with a per-episode bias: what it must infer
    over time (contact through the wrist wrench and the joint motion) is what the recurrence is for. 30 teacher-driven
    phase-1 iterations, 200 in all; buffer of 2M transitions (~0.9 GB of float32 at 43 + 58 observation floats and
    2 × 4 actions each); windows of 8 burn-in + 32 steps.
    """

    experiment_name: str = "gear_assembly_distillation"
    teacher_experiment_name: str = "gear_assembly"
    num_steps_per_env: int = 32
    max_iterations: int = 200
    save_interval: int = 50
    student: ModelCfg = field(default_factory=lambda: ModelCfg(
        class_name="RNNModel", hidden_dims=[256, 128], activation="elu", obs_normalization=True, rnn_type="gru",
        rnn_hidden_dim=128, rnn_num_layers=1, distribution_cfg=DistributionCfg(init_std=0.05, learn_std=False)))
    teacher: ModelCfg = field(default_factory=_teacher_model)
    algorithm: DAggerAlgorithmCfg = field(default_factory=lambda: DAggerAlgorithmCfg(
        phase1_iterations=30, max_buffer_size=2_000_000, gradient_length=32, burn_in=8))
    eval: EvalCfg = field(default_factory=lambda: EvalCfg(interval=25, num_episodes=256, final_num_episodes=1024))
