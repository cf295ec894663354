"""Environment layer: Isaac Lab-style ``DirectRLEnv`` on MuJoCo backends, and its rsl-rl adapter."""

from foundation.envs.direct_rl_env import DirectRLEnv
from foundation.envs.direct_rl_env_cfg import DirectRLEnvCfg, SceneCfg, SimCfg, SpawnCfg, ViewerCfg
from foundation.envs.rsl_rl_vec_env import RslRlVecEnvWrapper

__all__ = ["DirectRLEnv", "DirectRLEnvCfg", "RslRlVecEnvWrapper", "SceneCfg", "SimCfg", "SpawnCfg", "ViewerCfg"]
