"""Crazyflie 2.x point control: ``point_ctrl`` (PPO teacher) and ``distillation`` (DAgger student) task ids."""

from foundation.tasks.registry import register_task

_ENV = "foundation.tasks.point_ctrl.point_ctrl_env"
_AGENTS = "foundation.tasks.point_ctrl.agents"

register_task("point_ctrl", _ENV, "PointCtrlEnv", "PointCtrlEnvCfg", f"{_AGENTS}:PointCtrlPpoRunnerCfg")
# The same environment with the student-distillation runner: `train.py --task distillation`.
register_task("distillation", _ENV, "PointCtrlEnv", "PointCtrlEnvCfg", f"{_AGENTS}:PointCtrlDistillationRunnerCfg")
