"""Task registry: every task is a gymnasium id whose kwargs name its env config and rsl-rl runner config.

Importing ``foundation.tasks`` registers all tasks (as Isaac Lab's ``isaaclab_tasks`` does).
"""

from __future__ import annotations

import gymnasium as gym
from rsl_rl.utils import resolve_callable

from foundation.tasks import gear_assembly, point_ctrl  # noqa: F401  (registers the tasks)

def registered_tasks() -> list[str]:
    """Ids of every task registered by this package."""
    return sorted(k for k, s in gym.registry.items() if "env_cfg_entry_point" in s.kwargs)


def load_task_cfgs(task: str):
    """Fresh ``(env_cfg, agent_cfg)`` dataclass instances of a registered task.

    Raises:
        ValueError: if ``task`` is not registered, naming the registered ids.
    """
    if task not in registered_tasks():
        raise ValueError(f"Unknown task '{task}'. Registered tasks: {', '.join(registered_tasks())}.")
    kwargs = gym.spec(task).kwargs
    return resolve_callable(kwargs["env_cfg_entry_point"])(), resolve_callable(kwargs["rsl_rl_cfg_entry_point"])()


def make_env(task: str, env_cfg, render_mode: str | None = None):
    """Build the task's environment from ``env_cfg`` (``gym.make`` without gymnasium's single-env wrappers)."""
    return gym.make(task, cfg=env_cfg, render_mode=render_mode, disable_env_checker=True).unwrapped
