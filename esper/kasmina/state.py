"""A seed's state and metrics, and the typed records a slot returns from lifecycle operations.

The slot never emits telemetry: every operation returns a `SlotUpdate` listing, in order, the
gate checks it ran and the stage transitions it made, so the caller can turn them into events.
"Not measured" is always `None`, never a plausible-looking 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from esper.kasmina.alpha import AlphaSchedule
from esper.leyline.stages import AlphaAlgorithm, GateResult, SeedStage

# Who asked for a transition: the policy's action, an auto-forward gate or the cooldown clock
# (`step_epoch`), or the governor's rollback.
Initiator = Literal["policy", "auto", "lifecycle", "governor"]


@dataclass(frozen=True)
class GradientStats:
    """Gradient signals of one parameter group, from one vectorised pass after backward."""

    gradient_norm: float  # global L2 norm over the group's gradients
    n_tensors: int  # parameter tensors with a gradient
    n_vanishing: int  # tensors whose gradient norm < 1e-7
    n_exploding: int  # tensors whose gradient norm > 100 or is not finite
    gradient_health: float  # clamp(1 - 0.5 vanishing_ratio - 0.8 exploding_ratio, 0, 1)

    @property
    def has_vanishing(self) -> bool:
        return self.n_vanishing > 0

    @property
    def has_exploding(self) -> bool:
        return self.n_exploding > 0


@dataclass
class SeedState:
    """Lifecycle stage and per-epoch metrics of one seed. Accuracies are val accuracy in percent
    points of the whole model, recorded by the caller once per epoch."""

    seed_id: str
    slot_id: str
    blueprint: str
    algorithm: AlphaAlgorithm
    schedule: AlphaSchedule  # the blend ramp used when the seed enters BLENDING
    param_count: int  # blueprint + blend gate parameters
    accuracy_at_germination: float
    stage: SeedStage = SeedStage.DORMANT
    previous_stage: SeedStage = SeedStage.UNKNOWN
    epochs_total: int = 0  # epochs since germination
    epochs_in_stage: int = 0
    accuracy_at_stage_start: float = 0.0
    best_accuracy: float = 0.0
    current_accuracy: float = 0.0
    counterfactual_contribution: float | None = None  # acc(all) - acc(this slot's alpha = 0)
    contribution_velocity: float | None = None  # EMA 0.7 v + 0.3 delta; None until 2 measurements
    gradient_norm: float | None = None
    gradient_health: float | None = None
    has_vanishing: bool | None = None
    has_exploding: bool | None = None
    seed_gradient_norm_ratio: float | None = None  # seed / host gradient norm
    isolation_violations: int = 0  # batches where a host gradient was seen flowing from the seed

    def __post_init__(self) -> None:
        self.accuracy_at_stage_start = self.accuracy_at_germination
        self.best_accuracy = self.accuracy_at_germination
        self.current_accuracy = self.accuracy_at_germination

    @property
    def total_improvement(self) -> float:
        """Accuracy points gained since germination."""
        return self.current_accuracy - self.accuracy_at_germination

    @property
    def improvement_since_stage_start(self) -> float:
        """Accuracy points gained since the current stage began."""
        return self.current_accuracy - self.accuracy_at_stage_start

    def enter_stage(self, stage: SeedStage) -> None:
        """Move to `stage` and restart the per-stage counters (validity is the slot's job)."""
        self.previous_stage = self.stage
        self.stage = stage
        self.epochs_in_stage = 0
        self.accuracy_at_stage_start = self.current_accuracy

    def record_accuracy(self, accuracy: float) -> None:
        """Record this epoch's validation accuracy of the model."""
        self.current_accuracy = accuracy
        self.best_accuracy = max(self.best_accuracy, accuracy)

    def record_contribution(self, contribution: float) -> None:
        """Record a counterfactual measurement and update the contribution velocity."""
        previous = self.counterfactual_contribution
        if previous is not None:
            delta = contribution - previous
            velocity = 0.0 if self.contribution_velocity is None else self.contribution_velocity
            self.contribution_velocity = 0.7 * velocity + 0.3 * delta
        self.counterfactual_contribution = contribution

    def record_gradients(self, stats: GradientStats, host_gradient_norm: float | None) -> None:
        """Record a gradient measurement. The ratio is this measurement's: None when the host norm
        is unknown or 0 (not an earlier epoch's ratio), NaN when a norm is NaN (measured, not
        finite)."""
        self.gradient_norm = stats.gradient_norm
        self.gradient_health = stats.gradient_health
        self.has_vanishing = stats.has_vanishing
        self.has_exploding = stats.has_exploding
        if host_gradient_norm is None or host_gradient_norm == 0.0:  # a NaN norm is measured
            self.seed_gradient_norm_ratio = None
        else:
            self.seed_gradient_norm_ratio = stats.gradient_norm / host_gradient_norm

    def forget_gradients(self) -> None:
        """The seed's module is gone (pruned): its gradient signals are no longer measured, so
        they read None from now on, not the last values before the pruning."""
        self.gradient_norm = self.gradient_health = self.seed_gradient_norm_ratio = None
        self.has_vanishing = self.has_exploding = None


@dataclass(frozen=True)
class StageTransition:
    """A seed moved from one stage to another."""

    slot_id: str
    seed_id: str
    blueprint: str
    from_stage: SeedStage
    to_stage: SeedStage
    initiator: Initiator
    epochs_in_previous_stage: int
    epochs_total: int  # seed age at the transition
    reason: str  # short human text, e.g. "G2 passed", "cooldown", "governor rollback"


@dataclass(frozen=True)
class GateEvaluation:
    """A gate was checked on a seed (pass or fail), before any transition it allowed."""

    slot_id: str
    seed_id: str
    result: GateResult
    initiator: Initiator


@dataclass(frozen=True)
class SlotUpdate:
    """What a lifecycle operation did, in order. `ok`: the requested change happened (for
    `step_epoch` always True; a failed gate gives ok=False with the failing evaluation)."""

    slot_id: str
    ok: bool
    records: tuple[GateEvaluation | StageTransition, ...] = field(default_factory=tuple)

    @property
    def transitions(self) -> tuple[StageTransition, ...]:
        return tuple(r for r in self.records if isinstance(r, StageTransition))

    @property
    def gate_evaluations(self) -> tuple[GateEvaluation, ...]:
        return tuple(r for r in self.records if isinstance(r, GateEvaluation))
