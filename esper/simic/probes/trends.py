"""`trends` probe: the accuracy trend of each env's host over its episode, and the epoch each
env's host stabilises.

A host lives for one episode (every batch starts fresh hosts), so a trend follows one host: after
each validated epoch, the mean of the env's last `window` val accuracies minus the mean of the
`window` before them is the trend delta (positive = improvement). Its verdict is
DEGRADATION_DETECTED when delta < degradation, else IMPROVEMENT_DETECTED when delta >
improvement, else PLATEAU_DETECTED when |delta| < plateau, else none: one verdict per epoch even
where the thresholds overlap. The event is emitted when an env's verdict changes (a host that
stays flat for ten epochs is one plateau, not ten); nothing before two windows are full.
TAMIYO_INITIATED marks the epoch an env's host first counts as stabilised (the signal tracker's
test, docs/pipeline.md §5), once per env per episode.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from esper.leyline.config import TrendOptions
from esper.leyline.emitter import Emitter
from esper.leyline.events import (AccuracyTrendPayload, Severity, TamiyoInitiatedPayload,
                                  TelemetryEventType)
from esper.simic.env_state import EnvState
from esper.simic.lifecycle_events import StepContext


@dataclass
class _HostTrend:
    """One env's host in the current episode: its last 2 x window accuracies, oldest first, and
    the verdict last emitted for it."""

    accuracies: deque[float]
    verdict: TelemetryEventType | None = field(default=None)


class TrendsProbe:
    """Follows each env's host through its episode."""

    def __init__(self, options: TrendOptions, hub: Emitter) -> None:
        self.options, self.hub = options, hub
        self.hosts: dict[int, _HostTrend] = {}

    def epoch_validated(self, env: EnvState, ctx: StepContext, stabilised: bool) -> None:
        """`stabilised`: the signal tracker saw the host stabilise on this epoch."""
        result = env.last_result
        assert result is not None
        if ctx.epoch == 0:  # a fresh host
            self.hosts[env.env_id] = _HostTrend(deque(maxlen=2 * self.options.window))
        host = self.hosts[env.env_id]
        host.accuracies.append(result.val_accuracy)
        self._hold_trend(host, ctx)
        if stabilised:
            self.hub.emit(TelemetryEventType.TAMIYO_INITIATED, TamiyoInitiatedPayload(
                val_loss=result.val_loss, val_accuracy=result.val_accuracy,
                stable_epochs=env.signals.stable_epochs,
                stabilisation_epochs=env.signals.config.stabilisation_epochs),
                batch=ctx.batch, env_id=ctx.env_id, epoch=ctx.epoch,
                message="host stabilised: the policy may grow seeds")

    def _hold_trend(self, host: _HostTrend, ctx: StepContext) -> None:
        """Emit the host's trend verdict when it differs from the last one emitted."""
        window = self.options.window
        if len(host.accuracies) < 2 * window:
            return
        values = list(host.accuracies)
        older, recent = sum(values[:window]) / window, sum(values[window:]) / window
        delta = recent - older
        verdict, threshold, severity, what = self._verdict(delta)
        if verdict == host.verdict:
            return
        host.verdict = verdict
        if verdict is not None:
            self.hub.emit(verdict, AccuracyTrendPayload(
                delta=delta, recent_mean=recent, older_mean=older, window=window,
                threshold=threshold), severity=severity, batch=ctx.batch, env_id=ctx.env_id,
                epoch=ctx.epoch, message=f"{what}: {delta:+.2f} points over {window} epoch(s)")

    def _verdict(self, delta: float) -> tuple[TelemetryEventType | None, float, Severity, str]:
        """A move before a plateau: thresholds that overlap (a plateau wider than the
        degradation bound) never give an epoch two verdicts."""
        o = self.options
        if delta < o.degradation:
            return (TelemetryEventType.DEGRADATION_DETECTED, o.degradation, Severity.WARNING,
                    "accuracy degrading")
        if delta > o.improvement:
            return (TelemetryEventType.IMPROVEMENT_DETECTED, o.improvement, Severity.INFO,
                    "accuracy improving")
        if abs(delta) < o.plateau:
            return TelemetryEventType.PLATEAU_DETECTED, o.plateau, Severity.INFO, "accuracy plateau"
        return None, 0.0, Severity.INFO, ""
