"""`anomalies`: what went wrong in a PPO update, judged from its metrics.

Per update (thresholds in `telemetry.anomalies`):
- ratio_max > ratio_max -> RATIO_EXPLOSION_DETECTED;
- ratio_min < ratio_min -> RATIO_COLLAPSE_DETECTED;
- once `warmup_batches` updates have run (a fresh critic neither explains nor predicts anything):
  value_loss > max_value_loss x the mean square of the returns (scale-free: a critic that predicts
  0 has value_loss 0.5 x that mean square), or explained_variance <
  min_explained_variance -> VALUE_COLLAPSE_DETECTED;
- a NaN or infinity in a loss or a ratio statistic -> NUMERICAL_INSTABILITY_DETECTED.
The metrics are the same for the recurrent and the feed-forward policy, so both are checked.
"""

from __future__ import annotations

import math

from esper.leyline.config import AnomalyOptions
from esper.leyline.emitter import Emitter
from esper.leyline.events import PPOAnomalyPayload, PPOUpdatePayload, Severity, TelemetryEventType

_T = TelemetryEventType


def _non_finite(metrics: PPOUpdatePayload) -> list[str]:
    """Names of the losses and ratio statistics that are NaN or infinite; a statistic that was not
    measured (None, e.g. ratio_std of a one-sample batch) is not a number gone wrong."""
    checked = {"policy_loss": metrics.policy_loss, "value_loss": metrics.value_loss,
               "entropy": metrics.entropy, "approx_kl": metrics.approx_kl,
               "ratio_mean": metrics.ratio_mean, "ratio_min": metrics.ratio_min,
               "ratio_max": metrics.ratio_max, "ratio_std": metrics.ratio_std}
    return [name for name, value in checked.items() if value is not None and not math.isfinite(value)]


def _value_collapse(m: PPOUpdatePayload, o: AnomalyOptions) -> list[str]:
    """Why the critic has collapsed (after the warm-up), if it has."""
    found = []
    mean_square = m.return_mean ** 2 + (m.return_std or 0.0) ** 2  # std None: one sample
    if m.value_loss > o.max_value_loss * mean_square:
        found.append(f"value_loss {m.value_loss:.4g} > {o.max_value_loss:g} x mean square "
                     f"return {mean_square:.4g}")
    if m.explained_variance is not None and m.explained_variance < o.min_explained_variance:
        found.append(f"explained_variance {m.explained_variance:.4g} < "
                     f"{o.min_explained_variance:g} after {o.warmup_batches} warm-up updates")
    return found


class AnomalyDetector:
    """Checks every PPO update's metrics against the run's anomaly thresholds."""

    def __init__(self, options: AnomalyOptions) -> None:
        self.options = options

    def check(self, metrics: PPOUpdatePayload, batch: int, into: Emitter) -> None:
        """Emit the anomaly events of the update of batch `batch` (the batch-th update of the
        run) `into`."""
        o, m = self.options, metrics
        found: list[tuple[TelemetryEventType, str, str, Severity]] = []
        non_finite = _non_finite(m)
        if non_finite:
            found.append((_T.NUMERICAL_INSTABILITY_DETECTED, "numerical_instability",
                          f"not finite: {', '.join(non_finite)}", Severity.ERROR))
        if m.ratio_max > o.ratio_max:
            found.append((_T.RATIO_EXPLOSION_DETECTED, "ratio_explosion",
                          f"ratio_max {m.ratio_max:.4g} > {o.ratio_max:g}", Severity.WARNING))
        if m.ratio_min < o.ratio_min:
            found.append((_T.RATIO_COLLAPSE_DETECTED, "ratio_collapse",
                          f"ratio_min {m.ratio_min:.4g} < {o.ratio_min:g}", Severity.WARNING))
        value = _value_collapse(m, o) if batch >= o.warmup_batches else []
        if value:
            found.append((_T.VALUE_COLLAPSE_DETECTED, "value_collapse", "; ".join(value),
                          Severity.WARNING))
        for event_type, kind, detail, severity in found:
            into.emit(event_type, PPOAnomalyPayload(
                anomaly_type=kind, detail=detail, ratio_max=m.ratio_max, ratio_min=m.ratio_min,
                explained_variance=m.explained_variance, approx_kl=m.approx_kl,
                clip_fraction=m.clip_fraction, entropy=m.entropy),
                severity=severity, message=detail)
