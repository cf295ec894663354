"""Gear assembly with a Franka Panda: ``gear_assembly`` (PPO teacher) and ``gear_assembly_distillation`` (DAgger
student) task ids.

The physics scene is ``foundation/assets/gear_assembly/scene.xml`` (written by ``scripts/build_gear_assets.py``; its
measurements are in ``docs/gear_physics.md``); the env is ``gear_assembly_env.py``, its observation layout
``observations.py``, its reward terms ``rewards.py``; the scene's names and start ranges are in ``scene_cfg.py``, the
success predicate in ``success.py``, the scripted insertion controller in ``scripted.py`` (driving the env through
``scripted_policy.py``) and the raw-MuJoCo harness of the physics tests (whose grasp recipe builds the env's starts) in
``harness.py``.
"""

import gymnasium as gym

_ENV = "foundation.tasks.gear_assembly.gear_assembly_env"
_AGENTS = "foundation.tasks.gear_assembly.agents"

gym.register(
    id="gear_assembly",
    entry_point=f"{_ENV}:GearAssemblyEnv",
    disable_env_checker=True,
    kwargs={"env_cfg_entry_point": f"{_ENV}:GearAssemblyEnvCfg",
            "rsl_rl_cfg_entry_point": f"{_AGENTS}:GearAssemblyPpoRunnerCfg"},
)
# The same environment with the student-distillation runner: `train.py --task gear_assembly_distillation`.
gym.register(
    id="gear_assembly_distillation",
    entry_point=f"{_ENV}:GearAssemblyEnv",
    disable_env_checker=True,
    kwargs={"env_cfg_entry_point": f"{_ENV}:GearAssemblyEnvCfg",
            "rsl_rl_cfg_entry_point": f"{_AGENTS}:GearAssemblyDistillationRunnerCfg"},
)
