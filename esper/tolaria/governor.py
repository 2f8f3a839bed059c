"""The Governor (docs/pipeline.md §6): per env, watch the validation loss and roll the model
back to its last snapshot when training breaks.

- NaN/Inf val loss: immediate panic.
- Lobotomy (after >= 10 samples): loss within 6.5% of ln(classes) while the history mean is
  below 0.6 ln(classes), i.e. a model that had learned now predicts uniformly: panic.
- Divergence (after >= 10 samples): loss > 12 and > mean + 6 sigma and > 3 x mean, three
  epochs in a row: rollback.
A panic is a rollback. Rollback prunes every live seed (initiator "governor") and restores the
last snapshot of the host, the host optimiser and every fossilized seed. Snapshots are taken
every 5 epochs, and whenever the set of fossilized seeds changed (call `snapshot` right after a
fossilisation to take it before the next epoch's training).
Anomalous losses are not added to the history, so one spike cannot hide the next.
"""

from __future__ import annotations

import copy
import math
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

import torch

from esper.kasmina.host import MorphogeneticModel
from esper.kasmina.optim import Optimizer
from esper.kasmina.state import SlotUpdate
from esper.leyline.stages import SeedStage

MIN_SAMPLES = 10  # history length before the lobotomy and divergence checks apply
HISTORY = 20  # healthy val losses kept
LOBOTOMY_TOLERANCE = 0.065  # |loss - ln C| / ln C
LOBOTOMY_HISTORY_RATIO = 0.6  # history mean must be below this x ln C
DIVERGENCE_ABSOLUTE = 12.0
DIVERGENCE_SIGMAS = 6.0
DIVERGENCE_MEAN_RATIO = 3.0
DIVERGENCE_STREAK = 3  # divergent epochs in a row before a rollback
SNAPSHOT_EVERY = 5  # epochs

RollbackReason = Literal["nan_loss", "lobotomy", "divergence"]


@dataclass(frozen=True)
class ModelSnapshot:
    """Copies (detached, cloned) of what a rollback restores."""

    epoch: int
    host_state: dict[str, torch.Tensor]
    host_optimizer_state: dict[str, Any]
    fossilized_seeds: dict[str, tuple[dict[str, torch.Tensor], dict[str, Any] | None]]


@dataclass(frozen=True)
class GovernorVerdict:
    """The governor's reading of one val loss."""

    rollback: bool
    reason: RollbackReason | None
    val_loss: float
    divergence_streak: int  # consecutive divergent epochs, after this one


@dataclass(frozen=True)
class RollbackResult:
    """What a rollback did; the caller emits GOVERNOR_ROLLBACK and applies the penalty."""

    epoch: int  # the epoch whose val loss triggered it
    reason: RollbackReason
    val_loss: float
    snapshot_epoch: int  # the epoch the restored snapshot was taken at
    pruned: tuple[SlotUpdate, ...]  # one per live seed pruned (initiator "governor")
    restored_seeds: tuple[str, ...]  # slot ids of fossilized seeds restored from the snapshot


def _clone_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in state.items()}


class Governor:
    """Watches one env's validation loss; owns that env's snapshot."""

    def __init__(self, num_classes: int) -> None:
        self.uniform_loss = math.log(num_classes)  # cross-entropy of a uniform prediction
        self.history: deque[float] = deque(maxlen=HISTORY)
        self.divergence_streak = 0
        self.last_snapshot: ModelSnapshot | None = None

    # ---------------------------------------------------------------- snapshots

    def snapshot(self, model: MorphogeneticModel, host_optimizer: Optimizer,
                 epoch: int) -> ModelSnapshot:
        """Snapshot the host, its optimiser and every fossilized seed (live seeds are pruned on
        rollback, so they are not kept). Call at episode start and after each fossilisation."""
        fossils = {}
        for slot in model.seed_slots():
            if slot.stage is SeedStage.FOSSILIZED and slot.seed is not None:
                optimizer = None if slot.optimizer is None else copy.deepcopy(slot.optimizer.state_dict())
                fossils[slot.slot_id] = (_clone_state(slot.seed.state_dict()), optimizer)
        self.last_snapshot = ModelSnapshot(
            epoch=epoch,
            host_state=_clone_state(model.host.state_dict()),
            host_optimizer_state=copy.deepcopy(host_optimizer.state_dict()),
            fossilized_seeds=fossils,
        )
        return self.last_snapshot

    # ---------------------------------------------------------------- checks

    def check(self, val_loss: float) -> GovernorVerdict:
        """Classify `val_loss` and update the history and the divergence streak."""
        if not math.isfinite(val_loss):
            return self._verdict(True, "nan_loss", val_loss)
        if len(self.history) >= MIN_SAMPLES:
            mean = sum(self.history) / len(self.history)
            sigma = math.sqrt(sum((h - mean) ** 2 for h in self.history) / len(self.history))
            lobotomy = (
                abs(val_loss - self.uniform_loss) <= LOBOTOMY_TOLERANCE * self.uniform_loss
                and mean < LOBOTOMY_HISTORY_RATIO * self.uniform_loss
            )
            if lobotomy:
                return self._verdict(True, "lobotomy", val_loss)
            diverging = (
                val_loss > DIVERGENCE_ABSOLUTE
                and val_loss > mean + DIVERGENCE_SIGMAS * sigma
                and val_loss > DIVERGENCE_MEAN_RATIO * mean
            )
            if diverging:
                self.divergence_streak += 1
                if self.divergence_streak >= DIVERGENCE_STREAK:
                    return self._verdict(True, "divergence", val_loss)
                return self._verdict(False, None, val_loss)
        self.divergence_streak = 0
        self.history.append(val_loss)
        return self._verdict(False, None, val_loss)

    def _verdict(self, rollback: bool, reason: RollbackReason | None, val_loss: float) -> GovernorVerdict:
        return GovernorVerdict(rollback, reason, val_loss, self.divergence_streak)

    # ---------------------------------------------------------------- rollback

    def rollback(self, model: MorphogeneticModel, host_optimizer: Optimizer,
                 epoch: int, reason: RollbackReason, val_loss: float) -> RollbackResult:
        """Prune every live seed, then restore the last snapshot.

        Fossilized seeds absent from the snapshot keep their current weights.
        """
        snapshot = self.last_snapshot
        assert snapshot is not None, "Governor.snapshot must run before a rollback (episode start)"
        pruned = tuple(model.prune_live_seeds("governor", f"governor rollback: {reason}"))
        model.host.load_state_dict(snapshot.host_state)
        host_optimizer.load_state_dict(copy.deepcopy(snapshot.host_optimizer_state))
        restored = []
        for sid, (seed_state, optimizer_state) in snapshot.fossilized_seeds.items():
            slot = model.slot(sid)
            if slot.stage is SeedStage.FOSSILIZED and slot.seed is not None:
                slot.seed.load_state_dict(seed_state)
                if slot.optimizer is not None and optimizer_state is not None:
                    slot.optimizer.load_state_dict(copy.deepcopy(optimizer_state))
                restored.append(sid)
        self.divergence_streak = 0
        return RollbackResult(
            epoch=epoch,
            reason=reason,
            val_loss=val_loss,
            snapshot_epoch=snapshot.epoch,
            pruned=pruned,
            restored_seeds=tuple(restored),
        )

    def observe(self, model: MorphogeneticModel, host_optimizer: Optimizer,
                epoch: int, val_loss: float) -> RollbackResult | None:
        """End of an epoch (`epoch` counts completed epochs, from 1): check the val loss; roll
        back if needed, else snapshot every `SNAPSHOT_EVERY` epochs or when the fossilized set
        changed. Returns the rollback, or None."""
        verdict = self.check(val_loss)
        if verdict.rollback:
            assert verdict.reason is not None
            return self.rollback(model, host_optimizer, epoch, verdict.reason, val_loss)
        fossils = {s.slot_id for s in model.seed_slots() if s.stage is SeedStage.FOSSILIZED}
        known = set() if self.last_snapshot is None else set(self.last_snapshot.fossilized_seeds)
        if (epoch % SNAPSHOT_EVERY == 0 or fossils != known) and not verdict.divergence_streak:
            self.snapshot(model, host_optimizer, epoch)
        return None
