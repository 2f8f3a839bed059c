"""`gradient_drift`: has the policy gradient drifted from its running average?

Per PPO update, the policy's gradient norm and gradient health (as kasmina defines it for seeds:
clamp(1 - 0.5 vanishing_ratio - 0.8 exploding_ratio, 0, 1) over the parameter gradients, see
`esper.kasmina.gradients`), measured after every backward pass before clipping and averaged over
the update's epochs. An EMA of each (momentum `telemetry.gradient_drift.momentum`, 0.99) gives
drift = |x - ema| / (ema + eps), computed before the EMA takes x in; the first update initialises
the EMA and reports 0. Drift above `threshold` raises GRADIENT_PATHOLOGY_DETECTED.

The tracker belongs to the run's policy and is saved in its checkpoint (state_dict).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch

from esper.kasmina.state import GradientStats
from esper.leyline.config import GradientDriftOptions
from esper.leyline.events import (GradientPathologyPayload, PPOUpdatePayload, Severity,
                                  TelemetryEventType)
from esper.tamiyo.actor_critic import FactoredActorCritic
from esper.tamiyo.policy import ProbeEvent

EPS = 1e-8  # keeps the drift finite when the EMA is 0


@dataclass(frozen=True)
class GradientReading:
    """One update's policy gradient: norm and health, mean over its backward passes."""

    norm: float
    health: float  # [0, 1]


class PolicyGradientRecorder:
    """The policy gradient of one PPO update, one measurement per backward pass."""

    def __init__(self, network: FactoredActorCritic) -> None:
        #: one parameter group: every parameter of the policy
        self.groups: list[list[torch.nn.Parameter]] = [list(network.parameters())]
        self._stats: list[GradientStats] = []

    def record(self, stats: Sequence[GradientStats]) -> None:
        """One backward pass: the stats of `groups`."""
        (policy,) = stats
        self._stats.append(policy)

    def result(self) -> GradientReading:
        assert self._stats, "no backward pass was measured"
        n = len(self._stats)
        return GradientReading(norm=sum(s.gradient_norm for s in self._stats) / n,
                               health=sum(s.gradient_health for s in self._stats) / n)


class EMA:
    """An exponential moving average that reports each new value's drift from it."""

    def __init__(self, momentum: float) -> None:
        self.momentum = momentum
        self.value: float | None = None  # None until the first finite value

    def drift(self, x: float) -> float:
        """|x - ema| / (ema + eps) against the average before `x`, then take `x` in.

        The first value initialises the average (drift 0). A non-finite `x` has drift NaN or
        inf and is not taken in: one NaN gradient would otherwise poison every later drift.
        """
        if self.value is None:
            if math.isfinite(x):
                self.value = x
                return 0.0
            return math.nan
        drift = abs(x - self.value) / (self.value + EPS)
        if math.isfinite(x):
            self.value = self.momentum * self.value + (1 - self.momentum) * x
        return drift


@dataclass(frozen=True)
class GradientDrift:
    """The drift of one update's gradient norm and health, with what it was measured against."""

    reading: GradientReading
    norm_ema: float | None  # before this update; None on the first
    health_ema: float | None
    norm_drift: float
    health_drift: float


class GradientDriftTracker:
    """EMAs of the policy gradient norm and health across a run's PPO updates."""

    def __init__(self, options: GradientDriftOptions) -> None:
        self.threshold = options.threshold
        self.norm = EMA(options.momentum)
        self.health = EMA(options.momentum)

    def update(self, reading: GradientReading) -> GradientDrift:
        """The drifts of `reading`; then the EMAs take it in."""
        norm_ema, health_ema = self.norm.value, self.health.value
        return GradientDrift(reading, norm_ema, health_ema,
                             norm_drift=self.norm.drift(reading.norm),
                             health_drift=self.health.drift(reading.health))

    def events(self, drift: GradientDrift) -> list[ProbeEvent]:
        """GRADIENT_PATHOLOGY_DETECTED for each drift above the threshold (NaN included)."""
        events = []
        for kind, value, ema, amount in (
                ("gradient_norm_drift", drift.reading.norm, drift.norm_ema, drift.norm_drift),
                ("gradient_health_drift", drift.reading.health, drift.health_ema,
                 drift.health_drift)):
            if ema is None or amount <= self.threshold:
                continue
            what = kind.removesuffix("_drift").replace("_", " ")
            detail = (f"{what} {value:.4g} drifted {amount:.3g} from its running average "
                      f"{ema:.4g} (threshold {self.threshold:g})")
            events.append(ProbeEvent(
                TelemetryEventType.GRADIENT_PATHOLOGY_DETECTED,
                GradientPathologyPayload(anomaly_type=kind, detail=detail, value=value, ema=ema,
                                         drift=amount, threshold=self.threshold),
                Severity.WARNING, detail, None))
        return events

    def state_dict(self) -> dict[str, float | None]:
        return {"norm_ema": self.norm.value, "health_ema": self.health.value}

    def load_state_dict(self, state: dict[str, float | None]) -> None:
        self.norm.value, self.health.value = state["norm_ema"], state["health_ema"]


def with_gradient_drift(metrics: PPOUpdatePayload, drift: GradientDrift) -> PPOUpdatePayload:
    """`metrics` with gradient_norm_drift and gradient_health_drift measured."""
    return replace(metrics, gradient_norm_drift=drift.norm_drift,
                   gradient_health_drift=drift.health_drift)
