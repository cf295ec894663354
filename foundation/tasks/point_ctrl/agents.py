"""rsl-rl runner configs of the point-control task: PPO teacher and DAgger student."""

from __future__ import annotations

from dataclasses import dataclass

from foundation.rsl_rl.runner_cfg import DistillationRunnerCfg, PpoRunnerCfg


@dataclass
class PointCtrlPpoRunnerCfg(PpoRunnerCfg):
    """PPO teacher on the privileged ``teacher`` group (Isaac Lab quadcopter agent: [64, 64] ELU, 24 steps/env,
    lr 5e-4 adaptive, 5 epochs x 4 minibatches); 1024 envs and 200 iterations on the CPU."""

    experiment_name: str = "point_ctrl"
    max_iterations: int = 200
    save_interval: int = 50


@dataclass
class PointCtrlDistillationRunnerCfg(DistillationRunnerCfg):
    """DAgger student (GRU) on the deployable ``policy`` group, teacher = the PPO actor above."""

    experiment_name: str = "point_ctrl_distillation"
    teacher_experiment_name: str = "point_ctrl"
    max_iterations: int = 150
    save_interval: int = 50
