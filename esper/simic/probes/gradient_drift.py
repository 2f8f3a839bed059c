"""`gradient_drift`: has the policy gradient drifted from its running average?

Per PPO update, the policy's gradient norm and gradient health (as kasmina defines it for seeds:
clamp(1 - 0.5 vanishing_ratio - 0.8 exploding_ratio, 0, 1) over the parameter gradients, see
`esper.kasmina.gradients`), measured after every backward pass before clipping and averaged over
the update's epochs. Only the parameters the batch could train count: an action head that no
sample's op needs is cut off by the causal masks, and its exact-zero gradient is not vanishing
(else the action mix alone would move the health). An EMA of each (momentum
`telemetry.gradient_drift.momentum`, 0.99) gives drift = |x - ema| / (ema + eps), computed before the EMA takes x in; the first update reports 0
(nothing to drift from) and its reading, if finite, initialises the EMA. Drift above `threshold`
raises GRADIENT_PATHOLOGY_DETECTED, and so does every non-finite reading, the first included (its
drift is NaN later on; a non-finite reading never enters the EMA).

The tracker belongs to the run's policy and is saved in its checkpoint (state_dict).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch

from esper.kasmina.gradients import combined
from esper.kasmina.state import GradientStats
from esper.leyline.config import GradientDriftOptions
from esper.leyline.emitter import Emitter
from esper.leyline.events import (GradientPathologyPayload, PPOUpdatePayload, Severity,
                                  TelemetryEventType)
from esper.tamiyo.actor_critic import FactoredActorCritic

EPS = 1e-8  # keeps the drift finite when the EMA is 0


@dataclass(frozen=True)
class GradientReading:
    """One update's policy gradient: norm and health, mean over its backward passes."""

    norm: float
    health: float  # [0, 1]


class PolicyGradientRecorder:
    """The policy gradient of one PPO update, one measurement per backward pass."""

    def __init__(self, network: FactoredActorCritic) -> None:
        heads = [list(head.parameters()) for head in network.heads]
        in_heads = {id(p) for head in heads for p in head}
        #: parameter groups: everything but the action heads, then each action head
        self.groups: list[list[torch.nn.Parameter]] = [
            [p for p in network.parameters() if id(p) not in in_heads], *heads]
        self._stats: list[GradientStats] = []

    def record(self, stats: Sequence[GradientStats], relevant: Sequence[bool]) -> None:
        """One backward pass: the stats of `groups`; `relevant[h]`: action head h matters for at
        least one sample of the batch (the others are left out)."""
        trunk, *heads = stats
        self._stats.append(combined(
            [trunk, *(head for head, needed in zip(heads, relevant, strict=True) if needed)]))

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

        The first value has drift 0 and, if finite, initialises the average. A non-finite `x`
        has drift NaN or inf later on and is not taken in: one NaN gradient would otherwise
        poison every later drift.
        """
        if self.value is None:
            if math.isfinite(x):
                self.value = x
            return 0.0
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

    def report(self, drift: GradientDrift, into: Emitter) -> None:
        """Emit GRADIENT_PATHOLOGY_DETECTED `into` for each drift above the threshold (NaN
        included) and each non-finite reading (the first update's included)."""
        for kind, value, ema, amount in (
                ("gradient_norm_drift", drift.reading.norm, drift.norm_ema, drift.norm_drift),
                ("gradient_health_drift", drift.reading.health, drift.health_ema,
                 drift.health_drift)):
            if math.isfinite(value) and (ema is None or amount <= self.threshold):
                continue
            what = kind.removesuffix("_drift").replace("_", " ")
            against = "no running average yet" if ema is None else f"running average {ema:.4g}"
            detail = (f"{what} {value:.4g} drifted {amount:.3g} from its {against} "
                      f"(threshold {self.threshold:g})")
            into.emit(
                TelemetryEventType.GRADIENT_PATHOLOGY_DETECTED,
                GradientPathologyPayload(anomaly_type=kind, detail=detail, value=value, ema=ema,
                                         drift=amount, threshold=self.threshold),
                severity=Severity.WARNING, message=detail)

    def state_dict(self) -> dict[str, float | None]:
        return {"norm_ema": self.norm.value, "health_ema": self.health.value}

    def load_state_dict(self, state: dict[str, float | None]) -> None:
        self.norm.value, self.health.value = state["norm_ema"], state["health_ema"]


def with_gradient_drift(metrics: PPOUpdatePayload, drift: GradientDrift) -> PPOUpdatePayload:
    """`metrics` with gradient_norm_drift and gradient_health_drift measured."""
    return replace(metrics, gradient_norm_drift=drift.norm_drift,
                   gradient_health_drift=drift.health_drift)
