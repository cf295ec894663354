"""Gear assembly with a Franka Panda: ``gear_assembly`` (PPO teacher) and ``gear_assembly_distillation`` (DAgger
student) task ids.

The physics scene is ``foundation/assets/gear_assembly/scene.xml`` (written by ``scripts/build_gear_assets.py``; its
measurements are in ``docs/gear_physics.md``); the env is ``gear_assembly_env.py``, its observation layout
``observations.py``, its reward terms ``rewards.py``; the scene's names and start ranges are in ``scene_cfg.py``, the
success predicate in ``success.py``, the scripted insertion controller in ``scripted.py`` (driving the env through
``scripted_policy.py``) and the raw-MuJoCo harness of the physics tests (whose grasp recipe builds the env's starts) in
``harness.py``.
"""

from foundation.tasks.registry import register_task

_ENV = "foundation.tasks.gear_assembly.gear_assembly_env"
_AGENTS = "foundation.tasks.gear_assembly.agents"

register_task("gear_assembly", _ENV, "GearAssemblyEnv", "GearAssemblyEnvCfg", f"{_AGENTS}:GearAssemblyPpoRunnerCfg")
# The same environment, a quarter of its starts with the gear on the shaft's top face (GearAssemblyDistillationEnvCfg),
# with the student-distillation runner: `train.py --task gear_assembly_distillation`.
register_task("gear_assembly_distillation", _ENV, "GearAssemblyEnv", "GearAssemblyDistillationEnvCfg",
              f"{_AGENTS}:GearAssemblyDistillationRunnerCfg")
