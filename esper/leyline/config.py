"""Typed, frozen configuration of one experiment.

Each dataclass mirrors one section of ``schemas/experiment.schema.json``. The schema is the
one place that holds the defaults; ``esper.experiment.load`` fills them in before these
objects are built, so no field here has a default of its own (a test checks that the field
names and the schema's properties agree, both ways).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from esper.leyline.events import HeadValues

Dataset = Literal["digits", "cifar10", "synthetic"]
BlueprintName = Literal[
    "noop", "norm", "attention", "depthwise", "bottleneck", "conv_small", "conv_light", "conv_heavy"
]
HostPooling = Literal["every_block", "none"]
PolicyType = Literal["heuristic", "random", "mlp", "lstm"]
ProbeName = Literal[
    "lstm_health", "head_grad_norms", "gradient_drift", "anomalies", "trends", "gate_events",
    "slot_health", "seed_telemetry", "throughput", "cuda_timing", "profiler", "diagnostics",
    "memory", "reward_hacking",
]


@dataclass(frozen=True)
class SyntheticConfig:
    channels: int  # image channels
    size: int  # image height = width, pixels
    classes: int  # number of classes
    n_train: int  # training images
    n_val: int  # validation images


@dataclass(frozen=True)
class TaskConfig:
    dataset: Dataset
    data_dir: str | None  # CIFAR-10 python batches directory
    max_train: int | None  # subset size, None: all
    max_val: int | None  # subset size, None: all
    batch_size: int  # host minibatch size
    env_data: Literal["full", "split"]  # how envs share each epoch's data
    val_fraction: float  # digits validation share, (0, 1)
    synthetic: SyntheticConfig


@dataclass(frozen=True)
class HostConfig:
    type: Literal["cnn"]
    n_blocks: int  # conv blocks; block i has base_channels * 2**i channels
    base_channels: int
    kernel: int  # odd conv kernel size
    pooling: HostPooling  # every_block: MaxPool(2) after each block while H >= 2; none: no pool
    lr: float  # SGD learning rate
    momentum: float  # SGD momentum
    weight_decay: float  # SGD weight decay
    grad_clip: float  # gradient norm clip for the host


@dataclass(frozen=True)
class SlotsConfig:
    enabled: tuple[str, ...]  # slot ids r0c{i}, after host block i
    max_seeds: int  # seeds germinated per episode at most
    seed_lr: float  # each seed's SGD learning rate
    seed_momentum: float  # each seed's SGD momentum
    embargo_epochs: int  # epochs in EMBARGOED after a prune
    resetting_epochs: int  # epochs in RESETTING before the slot is empty again
    min_prune_age: int  # epochs a seed must live before it may be pruned


@dataclass(frozen=True)
class G2Thresholds:
    min_training_epochs: int  # epochs in TRAINING
    min_gradient_health: float  # [0, 1]
    min_improvement: float  # strict mode, accuracy points since stage start
    min_gradient_ratio: float  # strict mode, seed/host gradient norm ratio


@dataclass(frozen=True)
class G3Thresholds:
    alpha_tolerance: float  # |alpha - target| allowed
    min_blending_epochs: int  # strict mode


@dataclass(frozen=True)
class G5Thresholds:
    min_contribution: float  # strict mode, accuracy points


@dataclass(frozen=True)
class GatesConfig:
    mode: Literal["permissive", "strict"]
    auto_forward: tuple[str, ...]  # gates that advance a slot by themselves
    G2: G2Thresholds
    G3: G3Thresholds
    G5: G5Thresholds


@dataclass(frozen=True)
class SignalsConfig:
    """The signal tracker's thresholds, shared by every policy type (not only the heuristic)."""

    stabilisation_epochs: int  # consecutive stable epochs before the host counts as stable
    stabilisation_min_change: float  # relative val-loss change, lower bound of "stable"
    stabilisation_max_change: float  # relative val-loss change, upper bound of "stable"
    plateau_min_gain: float  # accuracy points; an epoch gaining less is a plateau epoch


@dataclass(frozen=True)
class HeuristicConfig:
    min_epoch: int  # no germination before this epoch, the germination deadline included
    plateau_epochs: int  # plateau epochs (signals.plateau_min_gain) before it is time to grow
    prune_min_epochs: int  # epochs in stage before a failing seed is pruned
    prune_below_improvement: float  # accuracy points
    fossilize_min_contribution: float  # accuracy points
    blueprint_penalty_limit: float  # skip blueprints whose prune penalty reaches this
    prune_cooldown_epochs: int  # no germination this many epochs after a prune


@dataclass(frozen=True)
class PolicyConfig:
    type: PolicyType
    feature_dim: int
    hidden_dim: int
    blueprint_embedding_dim: int
    init_from: str | None  # policy checkpoint path
    train: bool  # false: a frozen evaluation, no PPO update (mlp, lstm only)
    heuristic: HeuristicConfig


@dataclass(frozen=True)
class TrainingConfig:
    envs: int  # environments run side by side
    batches: int  # PPO batches (rounds)
    episode_length: int  # host epochs per episode
    replicates: int  # runs with seeds seed..seed+N-1
    device: Literal["cpu", "cuda", "auto"]
    # the envs' host steps as one stacked computation (docs/pipeline.md §1)
    batch_envs: Literal["auto", True, False]


# Entropy multiplier of each action head: the same eight per-head values as the metrics.
EntropyMultipliers = HeadValues


@dataclass(frozen=True)
class PPOConfig:
    lr: float  # Adam learning rate
    adam_eps: float
    gamma: float  # discount
    gae_lambda: float
    clip: float  # ratio clip per head
    value_coef: float
    entropy_coef: float
    entropy_coef_final: float | None  # linear anneal target, None: no anneal
    entropy_head_multipliers: EntropyMultipliers
    max_grad_norm: float
    target_kl: float | None  # stop an update epoch when approx KL > 1.5 x this
    update_epochs: int
    advantage_std_floor: float
    normalize_rewards: bool
    reward_clip: float
    governor_penalty: float  # reward of the step a governor rollback happens on


@dataclass(frozen=True)
class RewardWeights:
    stage_shaping: float
    param_rent_scale: float
    param_rent_max: float
    host_param_floor: int
    germinate_cost: float
    prune_cost: float
    fossilize_cost: float
    set_alpha_cost: float
    fossilize_bonus: float
    fossilize_bonus_per_point: float
    fossilize_wrong_stage: float
    terminal_accuracy: float
    holding_cost: float  # escrow: per seed left undecided in HOLDING, per step
    terminal_gain: float  # escrow: per point of committed accuracy over the reference host
    simplified_op_cost: float
    simplified_accuracy: float
    simplified_fossil: float
    sparse_scale: float
    sparse_param_penalty: float
    sparse_param_budget: int


@dataclass(frozen=True)
class RewardConfig:
    mode: Literal["escrow", "shaped", "simplified", "sparse"]
    weights: RewardWeights

    @property
    def trains_reference_host(self) -> bool:
        """Mode escrow measures real gain against a copy of the host trained alone."""
        return self.mode == "escrow"


@dataclass(frozen=True)
class LSTMHealthOptions:
    max_norm: float  # a hidden-state norm above this is unhealthy
    min_norm: float  # a hidden-state norm below this is unhealthy


@dataclass(frozen=True)
class GradientDriftOptions:
    momentum: float  # EMA momentum
    threshold: float  # drift above this is a pathology


@dataclass(frozen=True)
class AnomalyOptions:
    ratio_max: float
    ratio_min: float
    min_explained_variance: float
    warmup_batches: int  # the value-collapse checks start after this many updates
    max_value_loss: float  # a multiple of the mean square of the update's returns


@dataclass(frozen=True)
class TrendOptions:
    window: int  # epochs of one host per window
    plateau: float  # |delta| below this, accuracy points
    degradation: float  # delta below this
    improvement: float  # delta above this


@dataclass(frozen=True)
class ProfilerOptions:
    wait: int
    warmup: int
    active: int
    repeat: int


@dataclass(frozen=True)
class DiagnosticsOptions:
    every: int  # epochs between snapshots


@dataclass(frozen=True)
class MemoryOptions:
    rss_warning_mb: float


@dataclass(frozen=True)
class RewardHackingOptions:
    contribution_ratio: float
    min_contribution: float
    max_total_improvement: float


@dataclass(frozen=True)
class TelemetryConfig:
    probes: tuple[ProbeName, ...]
    lstm_health: LSTMHealthOptions
    gradient_drift: GradientDriftOptions
    anomalies: AnomalyOptions
    trends: TrendOptions
    profiler: ProfilerOptions
    diagnostics: DiagnosticsOptions
    memory: MemoryOptions
    reward_hacking: RewardHackingOptions

    def enabled(self, probe: ProbeName) -> bool:
        """Whether `probe` is switched on."""
        return probe in self.probes


@dataclass(frozen=True)
class WiringConfig:
    expect: tuple[str, ...]  # TELE ids that must be observed; fields in neither list are SKIP
    xfail: dict[str, str]  # TELE id -> reason it is a known gap (ids of the TELE catalogue)


@dataclass(frozen=True)
class TrackingConfig:
    mlflow: bool
    uri: str | None
    experiment: str | None
    tags: dict[str, str]


@dataclass(frozen=True)
class MetricThreshold:
    """One metric's regression rule; esper/regress/thresholds.py gives the exact semantics."""

    direction: Literal["higher", "lower"]
    threshold: float | None  # absolute bound the value must meet
    min_absolute_change: float | None  # improvement required over the baseline (MLflow)
    min_relative_change: float | None  # improvement required, fraction of |baseline| (MLflow)
    absolute_tolerance: float | None  # how much worse than the baseline the value may be
    relative_tolerance: float | None  # the same, as a fraction of |baseline|


# The fields of a MetricThreshold that check something (the rest is its direction): the
# absolute bound, then those that compare with a baseline.
BASELINE_CHECKS = ("min_absolute_change", "min_relative_change", "absolute_tolerance",
                   "relative_tolerance")
RULE_CHECKS = ("threshold", *BASELINE_CHECKS)


@dataclass(frozen=True)
class RegressionConfig:
    replicates: int
    metrics: dict[str, MetricThreshold]


@dataclass(frozen=True)
class SweepParameter:
    values: tuple[Any, ...] | None  # values to try (YAML data); None: the min..max range
    min: float | None
    max: float | None
    distribution: Literal["uniform", "log_uniform", "int_uniform"]  # how the range is drawn


@dataclass(frozen=True)
class SweepConfig:
    method: Literal["grid", "random"]
    parameters: dict[str, SweepParameter]  # dotted config key -> values or range
    max_runs: int | None  # random: draws; grid: a larger grid is an error
    metric: str  # the outcome metric trials are ranked by (esper.compare.outcomes)
    goal: Literal["maximize", "minimize"]


@dataclass(frozen=True)
class ExperimentSpec:
    """A validated experiment with every default filled in."""

    name: str
    description: str
    seed: int
    task: TaskConfig
    host: HostConfig
    slots: SlotsConfig
    blueprints: tuple[BlueprintName, ...]
    gates: GatesConfig
    policy: PolicyConfig
    signals: SignalsConfig
    training: TrainingConfig
    ppo: PPOConfig
    reward: RewardConfig
    telemetry: TelemetryConfig
    wiring: WiringConfig | None  # None: every field of every enabled probe is expected
    tracking: TrackingConfig
    regression: RegressionConfig | None
    sweep: SweepConfig | None  # None: not a sweep (esper sweep --grid can add one)

    def without_mlflow(self) -> ExperimentSpec:
        """The same experiment recorded to the registry only (``--no-mlflow``)."""
        return replace(self, tracking=replace(self.tracking, mlflow=False))
