"""`seed_telemetry` probe: a per-seed snapshot, once per epoch, for the policy and the record.

The gradient signals are kasmina's: `MorphogeneticModel.measure_gradients` measures every seed
in the forward pass on the epoch's last training batch, after backward and before the optimiser
steps, in one `torch._foreach_norm` pass and one transfer (global L2 norm; vanishing < 1e-7;
exploding > 100 or not finite; health = clamp(1 - 0.5 vanishing_ratio - 0.8 exploding_ratio,
0, 1)), and keeps them in the seed's state, where the gates read them. Once per epoch after
validation, `sync_telemetry` copies them with the seed's accuracy, accuracy delta, epochs in
stage, stage, alpha and the epoch into a `SeedTelemetry`; the env keeps the latest per slot, its
observation carries them (10 features per slot for the learned policies) and EPOCH_COMPLETED
records them (`SlotSummary.telemetry`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from esper.kasmina.slot import SeedSlot
from esper.leyline.seed_telemetry import SeedTelemetry
from esper.simic.env_state import EnvState
from esper.simic.lifecycle_events import StepContext


def sync_telemetry(slot: SeedSlot, epoch: int, max_epochs: int) -> SeedTelemetry | None:
    """The snapshot of `slot`'s seed at host epoch `epoch`; None for an empty slot.

    The accuracy delta is the seed's improvement since its stage began (accuracy points,
    positive = better). Gradient signals stay None until the seed has been measured.
    """
    state = slot.state
    if state is None:
        return None
    return SeedTelemetry(
        seed_id=state.seed_id, blueprint=state.blueprint, stage=state.stage.name,
        epochs_in_stage=state.epochs_in_stage, alpha=slot.alpha,
        accuracy=state.current_accuracy, accuracy_delta=state.improvement_since_stage_start,
        epoch=epoch, max_epochs=max_epochs,
        gradient_norm=state.gradient_norm, gradient_health=state.gradient_health,
        has_vanishing=state.has_vanishing, has_exploding=state.has_exploding,
        captured_at=time.time(),
    )


class SeedTelemetryProbe:
    """Keeps every env's `seed_telemetry` (slot id -> latest snapshot) up to date."""

    def __init__(self, episode_length: int) -> None:
        self.episode_length = episode_length

    def episode_started(self, envs: Sequence[EnvState]) -> None:
        """Fresh envs have no snapshot yet (an empty dict, not None: the probe is on)."""
        for env in envs:
            env.seed_telemetry = {}

    def epoch_validated(self, env: EnvState, ctx: StepContext, stabilised: bool) -> None:
        """After validation (and the governor): snapshot every seed of `env`."""
        snapshots = {}
        for slot in env.model.seed_slots():
            snapshot = sync_telemetry(slot, ctx.epoch, self.episode_length)
            if snapshot is not None:
                snapshots[slot.slot_id] = snapshot
        env.seed_telemetry = snapshots
