"""`trends` probe: accuracy trends over batches, and the epoch each env's host stabilises.

After every batch, the mean of the last `window` batches' mean val accuracy (BATCH_COMPLETED)
minus the mean of the `window` batches before them is the trend delta (positive = improvement):
|delta| < plateau -> PLATEAU_DETECTED; delta < degradation -> DEGRADATION_DETECTED;
delta > improvement -> IMPROVEMENT_DETECTED. Nothing is emitted before two windows are full.
TAMIYO_INITIATED marks the epoch an env's host first counts as stabilised (the signal tracker's
test, PIPELINE.md section 5), once per env per episode.
"""

from __future__ import annotations

from collections import deque

from esper.leyline.config import TrendOptions
from esper.leyline.events import (AccuracyTrendPayload, BatchCompletedPayload, Severity,
                                  TamiyoInitiatedPayload, TelemetryEventType)
from esper.nissa.hub import TelemetryHub
from esper.simic.env_state import EnvState
from esper.simic.lifecycle_events import StepContext


class TrendsProbe:
    """Keeps the last 2 x window batch accuracies of the run."""

    def __init__(self, options: TrendOptions, hub: TelemetryHub) -> None:
        self.options, self.hub = options, hub
        self.accuracies: deque[float] = deque(maxlen=2 * options.window)  # oldest first

    def epoch_validated(self, env: EnvState, ctx: StepContext, stabilised: bool) -> None:
        """`stabilised`: the signal tracker saw the host stabilise on this epoch."""
        if not stabilised:
            return
        result = env.last_result
        assert result is not None
        self.hub.emit(TelemetryEventType.TAMIYO_INITIATED, TamiyoInitiatedPayload(
            val_loss=result.val_loss, val_accuracy=result.val_accuracy,
            stable_epochs=env.signals.stable_epochs,
            stabilisation_epochs=env.signals.config.stabilisation_epochs),
            batch=ctx.batch, env_id=ctx.env_id, epoch=ctx.epoch,
            message="host stabilised: the policy may grow seeds")

    def batch_completed(self, batch: int, payload: BatchCompletedPayload) -> None:
        """Hold the batch's mean accuracy against the previous ones."""
        self.accuracies.append(payload.mean_val_accuracy)
        window = self.options.window
        if len(self.accuracies) < 2 * window:
            return
        values = list(self.accuracies)
        older, recent = sum(values[:window]) / window, sum(values[window:]) / window
        delta = recent - older
        options = self.options
        # one trend per batch, a move before a plateau: thresholds that overlap (a plateau
        # wider than the degradation bound) never give a batch two verdicts
        checks = (
            (delta < options.degradation, TelemetryEventType.DEGRADATION_DETECTED,
             options.degradation, Severity.WARNING, "accuracy degrading"),
            (delta > options.improvement, TelemetryEventType.IMPROVEMENT_DETECTED,
             options.improvement, Severity.INFO, "accuracy improving"),
            (abs(delta) < options.plateau, TelemetryEventType.PLATEAU_DETECTED,
             options.plateau, Severity.INFO, "accuracy plateau"),
        )
        for detected, event_type, threshold, severity, what in checks:
            if detected:
                self.hub.emit(event_type, AccuracyTrendPayload(
                    delta=delta, recent_mean=recent, older_mean=older, window=window,
                    threshold=threshold), severity=severity, batch=batch,
                    message=f"{what}: {delta:+.2f} points, window of {window} batch(es)")
                return
