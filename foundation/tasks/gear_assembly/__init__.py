"""Gear assembly with a Franka Panda: the scene's cfg, the success predicate and the scripted insertion controller.

The physics scene is ``foundation/assets/gear_assembly/scene.xml`` (written by ``scripts/build_gear_assets.py``);
its measurements are in ``docs/gear_physics.md``. The RL env is not here yet.
"""
