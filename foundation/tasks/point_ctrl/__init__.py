"""Crazyflie 2.x point control: ``point_ctrl`` (PPO teacher) and ``distillation`` (DAgger student) task ids."""

import gymnasium as gym

_ENV = "foundation.tasks.point_ctrl.point_ctrl_env"
_AGENTS = "foundation.tasks.point_ctrl.agents"

gym.register(
    id="point_ctrl",
    entry_point=f"{_ENV}:PointCtrlEnv",
    disable_env_checker=True,
    kwargs={"env_cfg_entry_point": f"{_ENV}:PointCtrlEnvCfg", "rsl_rl_cfg_entry_point": f"{_AGENTS}:PointCtrlPpoRunnerCfg"},
)
# The same environment with the student-distillation runner: `train.py --task distillation`.
gym.register(
    id="distillation",
    entry_point=f"{_ENV}:PointCtrlEnv",
    disable_env_checker=True,
    kwargs={"env_cfg_entry_point": f"{_ENV}:PointCtrlEnvCfg",
            "rsl_rl_cfg_entry_point": f"{_AGENTS}:PointCtrlDistillationRunnerCfg"},
)
