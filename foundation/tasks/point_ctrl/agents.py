"""rsl-rl runner configs of the point-control task: PPO teacher and DAgger student."""

from __future__ import annotations

from dataclasses import dataclass, field

from foundation.rsl_rl.runner_cfg import DAggerAlgorithmCfg, DistillationRunnerCfg, EvalCfg, PpoRunnerCfg


@dataclass
class PointCtrlPpoRunnerCfg(PpoRunnerCfg):
    """PPO teacher on the privileged ``teacher`` group (Isaac Lab quadcopter agent: [64, 64] ELU, 24 steps/env,
    lr 5e-4 adaptive, 5 epochs x 4 minibatches); 1024 envs and 400 iterations (9.8M env steps) on the CPU.

    400 iterations, evaluated every 20: under the domain randomisation of issue 8, success on the training
    distribution saturates by ~250 iterations and the nominal final distance keeps falling; on the shared 2-core CPU
    under load an iteration took 1.5–1.8 s, so 400 iterations with 20 evaluations of 512 episodes is what fits in
    about 10 minutes (the former 500 iterations with 50 evaluations took 3 min 34 s unloaded, ~15 min under this
    load). The periodic evaluation keeps the best checkpoint if a later one gets worse."""

    experiment_name: str = "point_ctrl"
    max_iterations: int = 400
    save_interval: int = 50
    eval: EvalCfg = field(default_factory=lambda: EvalCfg(interval=20))


@dataclass
class PointCtrlDistillationRunnerCfg(DistillationRunnerCfg):
    """DAgger student (GRU) on the deployable ``policy`` group, teacher = the PPO actor above.

    16 gradient steps of 256 windows per iteration (the DAgger default: 6 × 128), by measurement against the same
    teacher (the default 1-process run; ``scripts/evaluate_robustness.py``, 2048 episodes per condition, README), on
    the student without the accelerometer: the nominal final distance 0.95 cm instead of 2.02 cm (the issue's bound:
    2 cm), and the success within 2 points of the teacher's in 11 of 13 conditions instead of 9, for 134.5 s of
    training instead of 64 s (idle 2-core CPU). With the accelerometer (the ``policy`` group's last 3 entries) the
    default student is within 1.3 points of the teacher in every nominal, training and edge condition (190.6 s).
    """

    experiment_name: str = "point_ctrl_distillation"
    teacher_experiment_name: str = "point_ctrl"
    max_iterations: int = 150
    save_interval: int = 50
    algorithm: DAggerAlgorithmCfg = field(default_factory=lambda: DAggerAlgorithmCfg(num_gradient_steps=16,
                                                                                     batch_size=256))
