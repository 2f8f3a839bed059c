"""Telemetry events: the envelope, the event types and one typed payload class per type.

Every component reports through an ``Emitter`` (``esper.leyline.emitter``; the telemetry hub is
one), calling ``emit(event_type, payload, ...)``; the hub wraps the payload in a
``TelemetryEvent`` envelope (docs/architecture.md §3). ``PAYLOAD_TYPES`` maps each event type to
its payload class; the payload's fields are the event's required fields.

Rules (docs/architecture.md §3, docs/pipeline.md §8):
- ``None`` means "not measured"; ``0`` means "measured zero". Never write a default that looks
  measured.
- Step fields are explicit on the envelope (``batch``, ``env_id``, ``epoch``); payloads do not
  repeat them.

Adding an event type: add the enum member, a frozen payload dataclass, and one line in
``PAYLOAD_TYPES``. The JSON codec (``esper.leyline.codec``) needs no change: it derives a codec
for every registered class from its type hints.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, NamedTuple

from esper.leyline.rewards import RewardComponents
from esper.leyline.seed_telemetry import SeedTelemetry


class TelemetryEventType(Enum):
    """Every event esper records; the value is the name, as stored in the registry."""

    # Core events: always on (docs/pipeline.md §7).
    TRAINING_STARTED = "TRAINING_STARTED"
    EPOCH_COMPLETED = "EPOCH_COMPLETED"  # per env per host epoch
    BATCH_COMPLETED = "BATCH_COMPLETED"  # per PPO batch (round)
    SEED_GERMINATED = "SEED_GERMINATED"
    SEED_STAGE_CHANGED = "SEED_STAGE_CHANGED"
    SEED_FOSSILIZED = "SEED_FOSSILIZED"
    SEED_PRUNED = "SEED_PRUNED"
    PPO_UPDATE_COMPLETED = "PPO_UPDATE_COMPLETED"
    GOVERNOR_ROLLBACK = "GOVERNOR_ROLLBACK"
    EPISODE_OUTCOME = "EPISODE_OUTCOME"  # per env per episode
    RUN_FINISHED = "RUN_FINISHED"

    # Probe events: emitted only when their probe is switched on.
    SEED_GATE_EVALUATED = "SEED_GATE_EVALUATED"  # gate_events
    GRADIENT_PATHOLOGY_DETECTED = "GRADIENT_PATHOLOGY_DETECTED"  # gradient_drift
    RATIO_EXPLOSION_DETECTED = "RATIO_EXPLOSION_DETECTED"  # anomalies
    RATIO_COLLAPSE_DETECTED = "RATIO_COLLAPSE_DETECTED"  # anomalies
    VALUE_COLLAPSE_DETECTED = "VALUE_COLLAPSE_DETECTED"  # anomalies
    NUMERICAL_INSTABILITY_DETECTED = "NUMERICAL_INSTABILITY_DETECTED"  # anomalies
    PLATEAU_DETECTED = "PLATEAU_DETECTED"  # trends
    DEGRADATION_DETECTED = "DEGRADATION_DETECTED"  # trends
    IMPROVEMENT_DETECTED = "IMPROVEMENT_DETECTED"  # trends
    TAMIYO_INITIATED = "TAMIYO_INITIATED"  # trends: an env's host has stabilised
    LSTM_HEALTH_WARNING = "LSTM_HEALTH_WARNING"  # lstm_health, rollout hidden state unhealthy
    THROUGHPUT_MEASURED = "THROUGHPUT_MEASURED"  # throughput / cuda_timing, per env per epoch
    ANALYTICS_SNAPSHOT = "ANALYTICS_SNAPSHOT"  # diagnostics
    MEMORY_WARNING = "MEMORY_WARNING"  # memory
    REWARD_HACKING_SUSPECTED = "REWARD_HACKING_SUSPECTED"  # reward_hacking


class Severity(Enum):
    """How much attention an event asks for."""

    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"


# ---------------------------------------------------------------------------------------------
# Core payloads
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainingStartedPayload:
    experiment: str  # experiment name
    seed: int  # master seed
    envs: int  # parallel environments
    batches: int  # PPO batches (rounds) planned
    episode_length: int  # host epochs per episode
    policy: str  # policy type: heuristic, random, mlp, lstm
    probes: tuple[str, ...]  # probes switched on
    # the envs step as one stacked computation (`training.batch_envs` as resolved for this run:
    # auto, the device and the data decide); False in streams from before the option: they
    # stepped env by env
    stacked: bool = False


@dataclass(frozen=True)
class SlotSummary:
    """One slot's state at the end of an epoch."""

    slot_id: str  # r0c{i}
    stage: str  # SeedStage name; DORMANT when empty
    blueprint: str | None  # None: no seed in the slot
    alpha: float  # blend weight, [0, 1]
    contribution: float | None  # counterfactual accuracy points; None: not measured
    # seed_telemetry probe: the seed's snapshot as the policy saw it; None: probe off or no seed.
    telemetry: SeedTelemetry | None = None


@dataclass(frozen=True)
class EpochCompletedPayload:
    train_loss: float
    train_accuracy: float  # percent, [0, 100]
    val_loss: float
    val_accuracy: float  # percent, [0, 100]
    seeds_live: int  # seeds germinated and not yet fossilized or pruned
    seeds_fossilized: int
    slots: tuple[SlotSummary, ...]  # as the policy saw them, before its action
    action: str  # Op name the policy chose at the end of the epoch
    action_slot: str | None  # slot acted on; None for WAIT or an impossible choice
    action_success: bool  # False: impossible (executed as WAIT) or refused by a gate
    reward: float  # this step's reward, the sum of reward_components
    reward_components: RewardComponents
    # Measured in the same validation pass as val_accuracy (percent); None only in runs recorded
    # before esper measured them.
    committed_accuracy: float | None = None  # fossilised seeds on, live seeds off
    host_accuracy: float | None = None  # every seed off
    # Reward mode escrow: the validation accuracy of the env's reference host, a copy of the host
    # trained alone (never a seed) on the same batches; None when no reference host is trained.
    reference_accuracy: float | None = None


@dataclass(frozen=True)
class BatchCompletedPayload:
    mean_val_accuracy: float  # percent, over the batch's envs
    mean_episode_return: float
    episodes: int  # episodes completed in this batch
    mean_committed_accuracy: float | None = None  # percent, over the batch's episodes' ends
    mean_host_accuracy: float | None = None  # percent, over the batch's episodes' ends
    # memory probe, measured at the end of the batch; None: probe off (CUDA: or not on a GPU).
    rss_mb: float | None = None  # resident set size of the process, MiB
    cuda_allocated_mb: float | None = None  # torch.cuda.memory_allocated, MiB
    cuda_reserved_mb: float | None = None  # torch.cuda.memory_reserved, MiB


@dataclass(frozen=True)
class SeedGerminatedPayload:
    blueprint: str
    params: int  # trainable parameters of the seed
    alpha_style: str  # alpha schedule, e.g. linear, sigmoid


@dataclass(frozen=True)
class SeedStageChangedPayload:
    from_stage: str  # SeedStage name
    to_stage: str  # SeedStage name
    # slot_health probe; None when not measured (a value given by the caller wins).
    gradient_health: float | None = None  # [0, 1]
    has_vanishing: bool | None = None
    has_exploding: bool | None = None
    isolation_violations: int | None = None
    seed_gradient_norm_ratio: float | None = None  # seed / host gradient norm


@dataclass(frozen=True)
class SeedFossilizedPayload:
    blueprint: str
    params: int
    contribution: float | None  # counterfactual accuracy points; None: not measured
    total_improvement: float  # accuracy points since germination, positive = improvement


@dataclass(frozen=True)
class SeedPrunedPayload:
    blueprint: str
    reason: str  # e.g. policy, gate_failed, governor
    initiator: str  # who pruned: policy, governor, lifecycle
    total_improvement: float  # accuracy points since germination, positive = improvement


@dataclass(frozen=True)
class HeadValues:
    """One value per action head, a field per name of ``actions.HEADS`` in its order
    (docs/pipeline.md §4). In a PPO update, None for a head that no sample of the batch needed
    (not measured)."""

    op: float | None
    slot: float | None
    blueprint: float | None
    style: float | None
    tempo: float | None
    alpha_target: float | None
    alpha_speed: float | None
    alpha_curve: float | None


@dataclass(frozen=True)
class PPOUpdatePayload:
    """PPOUpdateMetrics of one PPO update (docs/pipeline.md §6); losses of the last epoch run,
    ratio statistics over every epoch, measured before each optimiser step."""

    policy_loss: float
    value_loss: float
    entropy: float  # mean over samples of the causal-masked entropy summed over heads
    entropy_per_head: HeadValues  # mean over the samples where the head matters; as entropy
    approx_kl: float  # http://joschu.net/blog/kl-approx.html (k3)
    clip_fraction: float  # share of (sample, relevant head) with |ratio - 1| > clip, [0, 1]
    explained_variance: float | None  # None: returns had zero variance, or one sample
    ratio_mean: float  # joint ratio over the relevant heads
    ratio_min: float
    ratio_max: float
    ratio_std: float | None  # None: a batch of one sample
    ratio_max_per_head: HeadValues  # over the samples where the head matters
    pre_clip_grad_norm: float
    advantage_mean: float  # before normalisation
    advantage_std: float | None  # None: a batch of one sample
    return_mean: float
    return_std: float | None  # None: a batch of one sample
    entropy_coef: float  # after the anneal
    epochs_completed: int  # update epochs run before the end or a KL early stop
    early_stopped: bool  # approx KL exceeded 1.5 x target_kl
    update_time_ms: float  # wall clock
    # Probe fields (docs/pipeline.md §7): None = not measured (probe off, or nothing to
    # measure); a probe that is off never writes them.
    # lstm_health (TELE-340): the LSTM's raw (h, c) after every evaluation of the actions; norms
    # are the L2 norm of each env's vector averaged over steps and envs, then over the epochs;
    # maxima are max |x| over the update; flags are ORed. None for the mlp policy.
    lstm_h_norm: float | None = None
    lstm_c_norm: float | None = None
    lstm_h_max: float | None = None
    lstm_c_max: float | None = None
    lstm_has_nan: bool | None = None
    lstm_has_inf: bool | None = None
    # head_grad_norms: L2 norm of each head's gradient after backward (before clipping), mean
    # over the update epochs; None for a head that got no gradient (no sample needed it). One
    # field per name of actions.HEADS, in its order, then the value head.
    head_op_grad_norm: float | None = None
    head_slot_grad_norm: float | None = None
    head_blueprint_grad_norm: float | None = None
    head_style_grad_norm: float | None = None
    head_tempo_grad_norm: float | None = None
    head_alpha_target_grad_norm: float | None = None
    head_alpha_speed_grad_norm: float | None = None
    head_alpha_curve_grad_norm: float | None = None
    head_value_grad_norm: float | None = None
    # gradient_drift: |x - ema| / (ema + eps) of the policy gradient norm and health, against
    # the EMA before this update; 0 on the first update.
    gradient_norm_drift: float | None = None
    gradient_health_drift: float | None = None


@dataclass(frozen=True)
class GovernorRollbackPayload:
    reason: str  # e.g. nan_loss, loss_spike
    val_loss: float  # the validation loss that triggered it, NaN or infinite kept
    seeds_pruned: int


@dataclass(frozen=True)
class EpisodeOutcomePayload:
    final_accuracy: float  # percent
    param_ratio: float  # (host + fossilized seed params) / host params
    seeds_germinated: int
    seeds_fossilized: int
    seeds_pruned: int
    episode_reward: float
    # The model at the episode's end, after its last action (percent); None only in runs recorded
    # before esper measured them.
    committed_accuracy: float | None = None  # fossilised seeds on, live seeds off: what is kept
    host_accuracy: float | None = None  # every seed off
    reference_accuracy: float | None = None  # the reference host's (mode escrow), else None


@dataclass(frozen=True)
class RunFinishedPayload:
    status: str  # FINISHED, FAILED or KILLED
    events_emitted: int  # events emitted before this one
    events_dropped: int  # summed over sinks


# ---------------------------------------------------------------------------------------------
# Probe payloads (docs/pipeline.md §7). Probes not listed here get theirs with their probe.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeedGateEvaluatedPayload:
    gate: str  # G0 .. G5
    passed: bool
    target_stage: str  # SeedStage name the gate leads to
    checks_passed: tuple[str, ...]
    checks_failed: tuple[str, ...]
    message: str | None = None  # the gate's verdict in words (also the envelope's message)


@dataclass(frozen=True)
class PPOAnomalyPayload:
    """One payload for the four PPO anomaly events of the ``anomalies`` probe."""

    anomaly_type: str  # ratio_explosion, ratio_collapse, value_collapse, numerical_instability
    detail: str
    ratio_max: float | None
    ratio_min: float | None
    explained_variance: float | None
    approx_kl: float | None
    clip_fraction: float | None
    entropy: float | None


@dataclass(frozen=True)
class LSTMHealthWarningPayload:
    """An env's LSTM hidden state went unhealthy during the rollout (``lstm_health`` probe);
    at most once per env per episode."""

    h_norm: float  # L2 norm of the env's h after the act (NaN / inf kept)
    c_norm: float  # L2 norm of the env's c
    has_nan: bool
    has_inf: bool
    reason: str  # nan, inf, norm_above_max, norm_below_min (the first that applies)


@dataclass(frozen=True)
class GradientPathologyPayload:
    """The policy gradient drifted from its running average (``gradient_drift`` probe)."""

    anomaly_type: str  # gradient_norm_drift, gradient_health_drift
    detail: str
    value: float  # this update's gradient norm, or health in [0, 1]
    ema: float | None  # the running average before this update; None: none yet
    drift: float  # |value - ema| / (ema + eps); NaN for a non-finite value
    threshold: float  # the drift above which this event is emitted


@dataclass(frozen=True)
class AccuracyTrendPayload:
    """The trend of one env's host over its episode (``trends`` probe), when its verdict
    changes once two windows of epochs are full; one payload for PLATEAU_DETECTED,
    DEGRADATION_DETECTED and IMPROVEMENT_DETECTED (the envelope has env_id and epoch)."""

    delta: float  # recent_mean - older_mean, accuracy points, positive = improvement
    recent_mean: float  # mean val accuracy of the host's last `window` epochs, percent
    older_mean: float  # mean of the `window` epochs before those, percent
    window: int  # epochs per window
    threshold: float  # the option the delta was held against (plateau, degradation, improvement)


@dataclass(frozen=True)
class TamiyoInitiatedPayload:
    """An env's host has stabilised (``trends`` probe), once per env per episode: the envelope's
    epoch is the first from which the policy may grow seeds."""

    val_loss: float
    val_accuracy: float  # percent
    stable_epochs: int  # consecutive epochs of steady val loss that made the host stable
    stabilisation_epochs: int | None = None  # the threshold (signals.stabilisation_epochs)


@dataclass(frozen=True)
class ThroughputPayload:
    """One env step (a training epoch and its validation), per env per epoch (``throughput``
    and ``cuda_timing`` probes)."""

    step_time_ms: float  # wall time of the step, read on `clock`
    clock: str  # "cuda": CUDA events (cuda_timing on a GPU); "cpu": time.perf_counter
    # throughput probe; None when only cuda_timing is on:
    dataloader_wait_ms: float | None  # building the training batches and gathering their samples
    fps: float | None  # env steps per second, 1000 / step_time_ms; None when step_time_ms is 0


@dataclass(frozen=True)
class LayerGradient:
    """One host layer's gradients on the epoch's last training batch, after backward and before
    clipping (thresholds of kasmina.gradients)."""

    layer: str  # module name in the host, e.g. blocks.0.conv
    gradient_norm: float  # L2 norm over the layer's own parameters' gradients
    gradient_health: float  # clamp(1 - 0.5 vanishing_ratio - 0.8 exploding_ratio, 0, 1)
    has_vanishing: bool  # a parameter's gradient norm < 1e-7
    has_exploding: bool  # a parameter's gradient norm > 100 or not finite


@dataclass(frozen=True)
class ClassAccuracy:
    """Validation accuracy on one class."""

    label: int  # class index
    samples: int  # validation samples of the class
    accuracy: float | None  # percent; None: the class has no validation sample


@dataclass(frozen=True)
class DiagnosticSnapshotPayload:
    """ANALYTICS_SNAPSHOT of kind ``diagnostic_snapshot`` (``diagnostics`` probe), per env every
    ``diagnostics.every`` epochs. The only kind so far; another kind gets its own class."""

    kind: str  # "diagnostic_snapshot"
    layers: tuple[LayerGradient, ...]  # the host's layers with parameters, in module order
    classes: tuple[ClassAccuracy, ...]  # val accuracy per class, with the current alphas
    train_accuracy: float  # percent, eval mode, on the epoch's training images
    val_accuracy: float  # percent
    train_val_gap: float  # train - val accuracy, points; positive = the host overfits
    red_flags: tuple[str, ...]  # plateau, vanishing_gradients, exploding_gradients, overfitting


@dataclass(frozen=True)
class MemoryWarningPayload:
    """The process's resident memory is above ``memory.rss_warning_mb`` (``memory`` probe),
    checked at the end of every batch."""

    rss_mb: float  # MiB
    threshold_mb: float  # memory.rss_warning_mb
    cuda_allocated_mb: float | None  # None: not on a GPU


@dataclass(frozen=True)
class RewardHackingPayload:
    """A seed's counterfactual contribution claims more than the model gained since the seed
    germinated (``reward_hacking`` probe), per seed per epoch it holds."""

    slot_id: str
    seed_id: str
    contribution: float  # counterfactual accuracy points, measured this epoch
    total_improvement: float  # accuracy points since the seed germinated, positive = better
    # contribution_ratio: contribution >= reward_hacking.contribution_ratio x total_improvement
    # (> 0); degradation: contribution > min_contribution while total_improvement is below
    # max_total_improvement.
    reason: str


#: Event type -> payload class. Adding an event type is one line here.
PAYLOAD_TYPES: dict[TelemetryEventType, type] = {
    TelemetryEventType.TRAINING_STARTED: TrainingStartedPayload,
    TelemetryEventType.EPOCH_COMPLETED: EpochCompletedPayload,
    TelemetryEventType.BATCH_COMPLETED: BatchCompletedPayload,
    TelemetryEventType.SEED_GERMINATED: SeedGerminatedPayload,
    TelemetryEventType.SEED_STAGE_CHANGED: SeedStageChangedPayload,
    TelemetryEventType.SEED_FOSSILIZED: SeedFossilizedPayload,
    TelemetryEventType.SEED_PRUNED: SeedPrunedPayload,
    TelemetryEventType.PPO_UPDATE_COMPLETED: PPOUpdatePayload,
    TelemetryEventType.GOVERNOR_ROLLBACK: GovernorRollbackPayload,
    TelemetryEventType.EPISODE_OUTCOME: EpisodeOutcomePayload,
    TelemetryEventType.RUN_FINISHED: RunFinishedPayload,
    TelemetryEventType.SEED_GATE_EVALUATED: SeedGateEvaluatedPayload,
    TelemetryEventType.PLATEAU_DETECTED: AccuracyTrendPayload,
    TelemetryEventType.DEGRADATION_DETECTED: AccuracyTrendPayload,
    TelemetryEventType.IMPROVEMENT_DETECTED: AccuracyTrendPayload,
    TelemetryEventType.TAMIYO_INITIATED: TamiyoInitiatedPayload,
    TelemetryEventType.THROUGHPUT_MEASURED: ThroughputPayload,
    TelemetryEventType.ANALYTICS_SNAPSHOT: DiagnosticSnapshotPayload,
    TelemetryEventType.MEMORY_WARNING: MemoryWarningPayload,
    TelemetryEventType.REWARD_HACKING_SUSPECTED: RewardHackingPayload,
    TelemetryEventType.RATIO_EXPLOSION_DETECTED: PPOAnomalyPayload,
    TelemetryEventType.RATIO_COLLAPSE_DETECTED: PPOAnomalyPayload,
    TelemetryEventType.VALUE_COLLAPSE_DETECTED: PPOAnomalyPayload,
    TelemetryEventType.NUMERICAL_INSTABILITY_DETECTED: PPOAnomalyPayload,
    TelemetryEventType.LSTM_HEALTH_WARNING: LSTMHealthWarningPayload,
    TelemetryEventType.GRADIENT_PATHOLOGY_DETECTED: GradientPathologyPayload,
}


class TelemetryEvent(NamedTuple):
    """The envelope every event travels in (docs/architecture.md §3).

    An immutable NamedTuple rather than a frozen dataclass: the hub builds 100,000 of them a
    second on its thread, and a frozen dataclass costs ~1.3 us to build (one object.__setattr__
    per field) against ~0.3 us. Read its fields by name; never unpack it by position.
    """

    run_id: str  # the registry's run id
    seq: int  # 0, 1, 2, ... per run; a gap means a lost event
    ts: float  # unix time, seconds
    event_type: TelemetryEventType
    severity: Severity
    batch: int | None  # PPO batch (round) index
    env_id: int | None  # environment index; None for batch- or run-level events
    epoch: int | None  # host epoch within the episode (the RL step)
    seed_id: str | None
    slot_id: str | None
    message: str  # short human text
    data: Any  # the payload: an instance of PAYLOAD_TYPES[event_type]


@dataclass(frozen=True)
class SinkStats:
    """What one telemetry sink did with the events of a run (reported by the hub, kept in the
    registry's run row)."""

    name: str
    written: int  # events its write() accepted
    dropped: int  # events it never got: backlog full, write() raised, or close timed out
    failures: int  # write() or close() calls that raised
    last_error: str | None  # "ExceptionClass: message" of the last failure
