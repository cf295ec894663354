"""Runner configs as dataclasses, converted with ``to_rsl_rl_dict`` into the dict that rsl-rl-lib 5.5.1 expects.

Field names are rsl-rl 5.5.1's own (``num_steps_per_env``, ``obs_groups``, ``actor``/``critic`` for PPO,
``student``/``teacher`` for distillation, ``distribution_cfg``); Isaac Lab 2.3's ``RslRlOnPolicyRunnerCfg`` targets
rsl-rl 3.x and cannot be used. Fields that are ours, not rsl-rl's, live in ``EvalCfg`` and are stripped before the
dict reaches rsl-rl.

Every cfg class has a ``validate()`` (ranges and cross-field rules, one line per problem naming the key, the value
and what is valid); :func:`validate_run_cfgs` runs them all, plus the rules that involve the env config, before
anything is built or written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from foundation.utils.config import ConfigError, FieldChecks, to_dict, validate

#: Activation names rsl-rl 5.5.1 knows (``rsl_rl.utils.resolve_nn_activation``).
ACTIVATIONS = ("elu", "selu", "relu", "crelu", "lrelu", "tanh", "sigmoid", "softplus", "gelu", "swish", "mish",
               "identity")


def check_name(checks: FieldChecks, key: str, allow_empty: bool = False) -> None:
    """``key`` is one folder name: no path separator, not ``.``/``..``, no control characters."""
    v = checks.value(key)
    ok = isinstance(v, str) and (v != "" or allow_empty) and not any(c in v for c in "/\\\0") and v not in (".", "..")
    checks.require(ok and v.isprintable(), key, "must be a single folder name (no '/', '\\', '..'"
                   + ("" if allow_empty else ", not empty") + ")")


@dataclass
class DistributionCfg:
    """Gaussian action distribution of a model (rsl-rl ``GaussianDistribution``)."""

    class_name: str = "GaussianDistribution"
    init_std: float = 1.0
    std_type: Literal["scalar", "log"] = "scalar"
    learn_std: bool = True

    def validate(self) -> None:
        """Raise ``ConfigError`` unless ``init_std > 0``."""
        c = FieldChecks(self, "distribution config")
        c.positive("init_std")
        c.raise_errors()


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

    def validate(self) -> None:
        """Raise ``ConfigError`` on empty or non-positive ``hidden_dims``, an activation rsl-rl does not know, or
        non-positive RNN sizes."""
        c = FieldChecks(self, "model config")
        c.require(len(self.hidden_dims) > 0 and all(d >= 1 for d in self.hidden_dims), "hidden_dims",
                  "must be a non-empty list of layer sizes >= 1, e.g. [64, 64]")
        c.one_of("activation", ACTIVATIONS)
        if self.class_name == "RNNModel":
            c.at_least("rnn_hidden_dim", 1)
            c.at_least("rnn_num_layers", 1)
        c.raise_errors()


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

    def validate(self) -> None:
        """Raise ``ConfigError`` on out-of-range PPO settings (discounts in [0, 1], positive rates and counts)."""
        c = FieldChecks(self, "PPO config")
        for key in ("num_learning_epochs", "num_mini_batches"):
            c.at_least(key, 1)
        for key in ("clip_param", "learning_rate", "max_grad_norm", "desired_kl"):
            c.positive(key)
        for key in ("gamma", "lam"):
            c.in_range(key, 0.0, 1.0)
        for key in ("value_loss_coef", "entropy_coef"):
            c.at_least(key, 0.0)
        c.raise_errors()


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

    def validate(self) -> None:
        """Raise ``ConfigError`` on a negative interval or weight, or fewer than one episode."""
        c = FieldChecks(self, "evaluation config")
        c.at_least("interval", 0, " (0: evaluate only at the end)")
        c.at_least("num_episodes", 1)
        c.at_least("final_num_episodes", 1)
        c.at_least("distance_weight", 0.0)
        c.raise_errors()


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
        log_git_diff: Store the git status and diff of the repository in the run folder (``git/*.diff``, never
            uploaded). Off by default: the diff holds the full text of uncommitted edits.
        eval: Deterministic evaluation settings.
    """

    #: rsl-rl observation sets this runner's algorithm needs in ``obs_groups``.
    OBS_SETS = ()

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
    log_git_diff: bool = False
    eval: EvalCfg = field(default_factory=EvalCfg)

    def validate(self) -> None:
        """Raise ``ConfigError`` on out-of-range counts, unsafe folder names, or incomplete ``obs_groups``."""
        c = FieldChecks(self, "runner config")
        for key in ("num_steps_per_env", "max_iterations", "save_interval", "torch_threads"):
            c.at_least(key, 1)
        c.require(0 <= self.seed < 2**63, "seed", "must be in [0, 2^63)")
        check_name(c, "experiment_name")
        check_name(c, "run_name", allow_empty=True)
        missing = [s for s in self.OBS_SETS if not self.obs_groups.get(s)]
        c.require(not missing, "obs_groups", f"needs a non-empty list of env observation groups for each of "
                  f"{', '.join(self.OBS_SETS)} (missing: {', '.join(missing)})")
        self._validate_algorithm(c)
        c.raise_errors()

    def _validate_algorithm(self, checks: FieldChecks) -> None:
        """Cross-field rules between this runner and its algorithm (subclasses)."""

    def validate_with_env(self, env_cfg, checks: FieldChecks) -> None:
        """Rules that involve the env config (subclasses), e.g. minibatches that divide the rollout."""


@dataclass
class PpoRunnerCfg(RunnerCfg):
    """PPO (teacher) runner: ``actor`` and ``critic`` models on the privileged ``teacher`` group by default."""

    obs_groups: dict[str, list[str]] = field(default_factory=lambda: {"actor": ["teacher"], "critic": ["teacher"]})
    actor: ModelCfg = field(default_factory=ModelCfg)
    critic: ModelCfg = field(default_factory=lambda: ModelCfg(distribution_cfg=None))
    algorithm: PpoAlgorithmCfg = field(default_factory=PpoAlgorithmCfg)

    OBS_SETS = ("actor", "critic")

    def validate_with_env(self, env_cfg, checks: FieldChecks) -> None:
        """``algorithm.num_mini_batches`` divides the rollout (``num_envs * num_steps_per_env`` transitions), and
        does not exceed ``num_envs`` for a recurrent actor (rsl-rl splits its minibatches by env)."""
        batch = env_cfg.scene.num_envs * self.num_steps_per_env
        m = self.algorithm.num_mini_batches
        if m >= 1 and batch >= 1:
            checks.require(batch % m == 0, "algorithm.num_mini_batches",
                           f"must divide the rollout of num_envs x num_steps_per_env = {batch} transitions")
            if self.actor.class_name == "RNNModel":
                checks.require(m <= env_cfg.scene.num_envs, "algorithm.num_mini_batches",
                               f"must be <= num_envs ({env_cfg.scene.num_envs}) for a recurrent actor")


@dataclass
class DAggerAlgorithmCfg:
    """Two-phase DAgger (:class:`foundation.rsl_rl.dagger.DAgger`); see its docstring for every field.

    ``max_buffer_size`` is the capacity of the aggregated buffer in transitions (234 bytes each for point
    control: 1e6 → 223 MiB, on the training device), **per process**: a data-parallel run of K processes
    (``--distributed``) holds K shards of this size, one on each process's device. ``batch_size`` is per process
    too (the gradient averages K minibatches).
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

    def validate(self) -> None:
        """Raise ``ConfigError`` on out-of-range DAgger settings."""
        c = FieldChecks(self, "DAgger config")
        c.at_least("phase1_iterations", 0)
        c.at_least("beta_decay_iterations", 1)
        c.in_range("beta_decay_rate", 0.0, 1.0, open_low=True, open_high=True)
        for key in ("max_buffer_size", "num_gradient_steps", "batch_size", "gradient_length"):
            c.at_least(key, 1)
        c.at_least("burn_in", 0)
        c.positive("learning_rate")
        c.positive("max_grad_norm")
        c.raise_errors()


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

    OBS_SETS = ("student", "teacher")

    def _validate_algorithm(self, checks: FieldChecks) -> None:
        """``algorithm.phase1_iterations <= max_iterations`` (else the student never drives)."""
        checks.require(self.algorithm.phase1_iterations <= self.max_iterations, "algorithm.phase1_iterations",
                       f"must be <= max_iterations ({self.max_iterations}), else the student never drives")
        check_name(checks, "teacher_experiment_name", allow_empty=True)

    def validate_with_env(self, env_cfg, checks: FieldChecks) -> None:
        """The aggregated buffer holds at least one env step (``num_envs`` transitions)."""
        checks.require(self.algorithm.max_buffer_size >= env_cfg.scene.num_envs, "algorithm.max_buffer_size",
                       f"must hold at least one env step: >= num_envs ({env_cfg.scene.num_envs})")


def to_rsl_rl_dict(cfg: RunnerCfg) -> dict:
    """The rsl-rl 5.5.1 ``train_cfg`` dict of ``cfg``: our own fields removed, logger in rsl-rl's form.

    ``rnn_*`` fields are dropped from ``MLPModel`` configs (rsl-rl raises on unknown model kwargs).
    """
    d = to_dict(cfg)
    for key in ("runner_class_name", "experiment_name", "seed", "device", "max_iterations", "log_project_name",
                "torch_threads", "eval", "teacher_experiment_name", "log_git_diff"):
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


def validate_run_cfgs(env_cfg, agent_cfg: RunnerCfg) -> None:
    """Validate the env and runner configs as a whole: every node's ``validate()`` and the cross-config rules.

    Raises:
        ConfigError: listing every problem, one line each (``agent.algorithm.gamma=2.0: must be in [0.0, 1.0]``).
    """
    lines: list[str] = []
    try:
        validate({"env": env_cfg, "agent": agent_cfg})
    except ConfigError as err:
        lines += err.lines
    checks = FieldChecks(agent_cfg, "runner config")
    agent_cfg.validate_with_env(env_cfg, checks)
    lines += [f"agent.{ln}" for ln in checks.lines]
    if lines:
        raise ConfigError("invalid config:\n" + "\n".join(f"  - {ln}" for ln in lines), lines)
