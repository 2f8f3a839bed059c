"""What a policy sees of one env at the end of an epoch (docs/pipeline.md §4)."""

from __future__ import annotations

from dataclasses import dataclass

from esper.leyline.actions import Op
from esper.leyline.seed_telemetry import SeedTelemetry
from esper.leyline.stages import SeedStage


@dataclass(frozen=True)
class SlotView:
    """One slot as the policy sees it. `stage` None: the slot is empty."""

    slot_id: str
    stage: SeedStage | None
    blueprint_index: int | None  # index into the experiment's blueprints
    alpha: float
    alpha_target: float
    alpha_holding: bool  # the alpha controller reached its target and holds
    epochs_in_stage: int
    seed_age: int  # epochs since germination
    improvement_since_stage_start: float  # accuracy points, positive = better
    total_improvement: float  # accuracy points since germination
    contribution: float | None  # counterfactual, None until measured
    contribution_velocity: float | None  # None until two contributions were measured
    gradient_norm: float | None  # None until measured
    gradient_health: float | None  # [0, 1], None until measured
    has_vanishing: bool | None
    has_exploding: bool | None
    telemetry: SeedTelemetry | None = None  # seed_telemetry probe; None: probe off or no seed

    @property
    def empty(self) -> bool:
        return self.stage is None


@dataclass(frozen=True)
class EnvObservation:
    """One env at the end of an epoch, before the policy acts."""

    epoch: int  # 0-based epoch within the episode
    episode_length: int
    val_loss: float
    val_accuracy: float  # percent
    loss_history: tuple[float, ...]  # last epochs, oldest first
    accuracy_history: tuple[float, ...]
    host_stabilised: bool
    plateau_epochs: int
    seeds_germinated: int  # this episode
    max_seeds: int
    last_op: Op
    last_success: bool
    slots: tuple[SlotView, ...]
    seed_telemetry: bool = False  # the seed_telemetry probe is on: 10 more features per slot
    committed_accuracy: float | None = None  # percent: fossils on, live seeds off
    # val_accuracy minus the reference host's (reward mode escrow); None without a reference host
    real_gain: float | None = None

    def count(self, *stages: SeedStage) -> int:
        """Number of slots whose seed is in one of `stages`."""
        return sum(view.stage in stages for view in self.slots)
