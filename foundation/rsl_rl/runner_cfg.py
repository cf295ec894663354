"""Runner configs as dataclasses, converted with ``to_rsl_rl_dict`` into the dict that rsl-rl-lib 5.5.1 expects.

Field names are rsl-rl 5.5.1's own (``num_steps_per_env``, ``obs_groups``, ``actor``/``critic`` for PPO,
``student``/``teacher`` for distillation, ``distribution_cfg``); Isaac Lab 2.3's ``RslRlOnPolicyRunnerCfg`` targets
rsl-rl 3.x and cannot be used. Fields that are ours, not rsl-rl's, live in ``EvalCfg`` and are stripped before the
dict reaches rsl-rl.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from foundation.utils.config import to_dict


@dataclass
class DistributionCfg:
    """Gaussian action distribution of a model (rsl-rl ``GaussianDistribution``)."""

    class_name: str = "GaussianDistribution"
    init_std: float = 1.0
    std_type: Literal["scalar", "log"] = "scalar"
    learn_std: bool = True


@dataclass
class ModelCfg:
    """An rsl-rl model: ``MLPModel`` or ``RNNModel`` (``rnn_*`` fields only for the latter)."""

    class_name: Literal["MLPModel", "RNNModel"] = "MLPModel"
    hidden_dims: list[int] = field(default_factory=lambda: [64, 64])
    activation: str = "elu"
    obs_normalization: bool = True
    distribution_cfg: DistributionCfg | None = field(default_factory=DistributionCfg)
    rnn_type: Literal["gru", "lstm"] = "gru"
    rnn_hidden_dim: int = 64
    rnn_num_layers: int = 1


@dataclass
class PpoAlgorithmCfg:
    """rsl-rl ``PPO`` hyper-parameters (defaults: Isaac Lab's quadcopter agent)."""

    class_name: str = "PPO"
    num_learning_epochs: int = 5
    num_mini_batches: int = 4
    clip_param: float = 0.2
    gamma: float = 0.99
    lam: float = 0.95
    value_loss_coef: float = 1.0
    entropy_coef: float = 0.0
    learning_rate: float = 5e-4
    max_grad_norm: float = 1.0
    use_clipped_value_loss: bool = True
    schedule: Literal["adaptive", "fixed"] = "adaptive"
    desired_kl: float = 0.01


@dataclass
class EvalCfg:
    """Deterministic evaluation (ours, not rsl-rl's).

    Attributes:
        interval: Evaluate every this many iterations during training (0: only at the end); the best evaluated
            checkpoint is kept as ``best_model.pt``.
        num_episodes: Episodes per evaluation (one per environment of a separate evaluation env).
        final_num_episodes: Episodes of the evaluation at the end of training and of ``--eval_only``.
        distance_weight: Checkpoints are ranked by ``success_rate - distance_weight * final_distance_m``: with 1.0,
            one centimetre of mean final error costs as much as one percent of success rate (a difference of a
            few episodes in 512, i.e. noise, no longer outweighs a clearly more precise policy).
    """

    interval: int = 10
    num_episodes: int = 512
    final_num_episodes: int = 2048
    distance_weight: float = 1.0


@dataclass
class RunnerCfg:
    """Fields common to every rsl-rl runner.

    Attributes:
        runner_class_name: ``OnPolicyRunner`` (PPO) or ``DistillationRunner``.
        experiment_name: Folder under ``logs/rsl_rl/``.
        run_name: Suffix of the run folder.
        seed: Seed of torch and the environment.
        device: Training device (``"cpu"``, ``"cuda:0"``); the env runs there too.
        num_steps_per_env: Rollout length per iteration.
        max_iterations: Learning iterations.
        save_interval: Checkpoint every this many iterations.
        logger: ``"tensorboard"`` or ``"wandb"`` (offline unless an API key is configured).
        log_project_name: wandb project.
        obs_groups: Map from rsl-rl observation sets to env observation groups.
        torch_threads: ``torch.set_num_threads`` on the CPU (1–2 avoids oversubscription on small CPUs).
        eval: Deterministic evaluation settings.
    """

    runner_class_name: str = "OnPolicyRunner"
    experiment_name: str = "default"
    run_name: str = ""
    seed: int = 42
    device: str = "cpu"
    num_steps_per_env: int = 24
    max_iterations: int = 200
    save_interval: int = 50
    logger: Literal["tensorboard", "wandb"] = "tensorboard"
    log_project_name: str = "foundation"
    obs_groups: dict[str, list[str]] = field(default_factory=dict)
    torch_threads: int = 1
    eval: EvalCfg = field(default_factory=EvalCfg)


@dataclass
class PpoRunnerCfg(RunnerCfg):
    """PPO (teacher) runner: ``actor`` and ``critic`` models on the privileged ``teacher`` group by default."""

    obs_groups: dict[str, list[str]] = field(default_factory=lambda: {"actor": ["teacher"], "critic": ["teacher"]})
    actor: ModelCfg = field(default_factory=ModelCfg)
    critic: ModelCfg = field(default_factory=lambda: ModelCfg(distribution_cfg=None))
    algorithm: PpoAlgorithmCfg = field(default_factory=PpoAlgorithmCfg)


@dataclass
class DAggerAlgorithmCfg:
    """Two-phase DAgger (:class:`foundation.rsl_rl.dagger.DAgger`); see its docstring for every field.

    ``max_buffer_size`` is the capacity of the aggregated buffer in transitions (234 bytes each for point
    control: 1e6 → 223 MiB, on the training device).
    """

    class_name: str = "foundation.rsl_rl.dagger:DAgger"
    phase1_iterations: int = 20
    beta_schedule: Literal["two_phase", "linear", "exponential"] = "two_phase"
    beta_decay_iterations: int = 50
    beta_decay_rate: float = 0.9
    max_buffer_size: int = 1_000_000
    aggregate: bool = True
    num_gradient_steps: int = 6
    batch_size: int = 128
    gradient_length: int = 24
    burn_in: int = 8
    learning_rate: float = 1e-3
    max_grad_norm: float = 1.0
    loss_type: Literal["mse", "huber"] = "mse"
    save_buffer: bool = False


@dataclass
class DistillationRunnerCfg(RunnerCfg):
    """Student distillation runner: ``student`` on the deployable ``policy`` group, ``teacher`` on ``teacher``.

    Attributes:
        teacher_experiment_name: Experiment whose newest run provides the teacher when no ``--checkpoint`` is given.
        student: Recurrent (GRU) by default: the ``policy`` group omits motor state and physical parameters, which
            the observation history reveals.
        teacher: Must mirror the PPO ``actor`` config exactly (its weights are loaded from the PPO checkpoint).
    """

    runner_class_name: str = "DistillationRunner"
    teacher_experiment_name: str = ""
    obs_groups: dict[str, list[str]] = field(default_factory=lambda: {"student": ["policy"],
                                                                      "teacher": ["teacher"]})
    student: ModelCfg = field(default_factory=lambda: ModelCfg(
        class_name="RNNModel", distribution_cfg=DistributionCfg(init_std=0.05, learn_std=False)))
    teacher: ModelCfg = field(default_factory=ModelCfg)
    algorithm: DAggerAlgorithmCfg = field(default_factory=DAggerAlgorithmCfg)


def to_rsl_rl_dict(cfg: RunnerCfg) -> dict:
    """The rsl-rl 5.5.1 ``train_cfg`` dict of ``cfg``: our own fields removed, logger in rsl-rl's form.

    ``rnn_*`` fields are dropped from ``MLPModel`` configs (rsl-rl raises on unknown model kwargs).
    """
    d = to_dict(cfg)
    for key in ("runner_class_name", "experiment_name", "seed", "device", "max_iterations", "log_project_name",
                "torch_threads", "eval", "teacher_experiment_name"):
        d.pop(key, None)
    for model in ("actor", "critic", "student", "teacher"):
        if model in d and d[model]["class_name"] == "MLPModel":
            for key in ("rnn_type", "rnn_hidden_dim", "rnn_num_layers"):
                d[model].pop(key)
        if model in d and d[model]["distribution_cfg"] is None:
            d[model].pop("distribution_cfg")
    if cfg.logger == "wandb":
        d["logger"] = {"class_name": "WandbLogWriter", "project_name": cfg.log_project_name}
    return d
