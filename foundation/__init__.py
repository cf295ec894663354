"""Foundation: Isaac Lab-style MuJoCo environments and teacher-student (PPO → DAgger) training with rsl-rl."""

__version__ = "0.1.0"
