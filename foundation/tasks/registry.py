"""One function that registers a task id with gymnasium in the form the package expects (mjlab's registry idea).

The kwargs name the env config and the rsl-rl runner config by entry point, so ``foundation.tasks.load_task_cfgs``
can build fresh dataclass instances and ``train.py``/``play.py`` can find a task's runner without importing it.
"""

from __future__ import annotations

import gymnasium as gym


def register_task(task_id: str, env_module: str, env_class: str, env_cfg_class: str, runner_cfg: str) -> None:
    """Register ``task_id``: env ``<env_module>:<env_class>``, config ``<env_module>:<env_cfg_class>``, runner config
    ``runner_cfg`` (``"module:Class"``). A teacher and its student are two ids on the same env with two runner
    configs."""
    gym.register(
        id=task_id,
        entry_point=f"{env_module}:{env_class}",
        disable_env_checker=True,
        kwargs={"env_cfg_entry_point": f"{env_module}:{env_cfg_class}", "rsl_rl_cfg_entry_point": runner_cfg},
    )
