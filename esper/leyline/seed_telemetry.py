"""The per-seed snapshot of the `seed_telemetry` probe (docs/pipeline.md §7).

A `SeedTelemetry` is what `sync_telemetry` copies from a seed once per epoch, after validation:
its stage, alpha and accuracy, and the gradient signals kasmina measured on the epoch's last
training batch (after backward, before the optimiser step). It is recorded on EPOCH_COMPLETED
(``SlotSummary.telemetry``) and feeds the learned policies' observation (10 features per slot,
`esper.tamiyo.features.telemetry_features`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SeedTelemetry:
    """One seed at the end of an epoch. Gradient signals are None until the seed has been
    measured (a GERMINATED seed is not in the forward pass, so it has none yet)."""

    seed_id: str
    blueprint: str
    stage: str  # SeedStage name
    epochs_in_stage: int
    alpha: float  # blend weight, [0, 1]
    accuracy: float  # the model's val accuracy as the seed last recorded it, percent
    accuracy_delta: float  # accuracy points since the stage began, positive = improvement
    epoch: int  # host epoch of the capture within the episode, 0-based
    max_epochs: int  # episode length
    gradient_norm: float | None  # global L2 norm of the seed's gradients
    gradient_health: float | None  # [0, 1]
    has_vanishing: bool | None  # a parameter's gradient norm < 1e-7
    has_exploding: bool | None  # a parameter's gradient norm > 100 or not finite
    captured_at: float  # unix time of the capture (wall clock, like the envelope's ts)
