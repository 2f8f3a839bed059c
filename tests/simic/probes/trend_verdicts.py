"""The trend events a recorded run should hold, recomputed from its EPOCH_COMPLETED events: the
`trends` probe's rule (docs/telemetry.md) written out independently for the tests."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from esper.leyline.config import SignalsConfig, TrendOptions
from esper.leyline.events import TelemetryEvent, TelemetryEventType as T

TRENDS = (T.PLATEAU_DETECTED, T.DEGRADATION_DETECTED, T.IMPROVEMENT_DETECTED)


def _per_host(events: Iterable[TelemetryEvent], field: str) -> dict[tuple[int, int], list[float]]:
    """(batch, env) -> the EPOCH_COMPLETED `field` of that host, epoch by epoch, hosts sorted."""
    hosts: dict[tuple[int, int], list[tuple[int, float]]] = defaultdict(list)
    for e in events:
        if e.event_type is T.EPOCH_COMPLETED:
            hosts[(e.batch, e.env_id)].append((e.epoch, getattr(e.data, field)))
    return {host: [value for _, value in sorted(epochs)] for host, epochs in sorted(hosts.items())}


def verdict(delta: float, o: TrendOptions) -> T | None:
    """A degradation, else an improvement, else a plateau, else none."""
    if delta < o.degradation:
        return T.DEGRADATION_DETECTED
    if delta > o.improvement:
        return T.IMPROVEMENT_DETECTED
    return T.PLATEAU_DETECTED if abs(delta) < o.plateau else None


def expected_trends(events: Iterable[TelemetryEvent],
                    o: TrendOptions) -> list[tuple[int, int, int, T, float]]:
    """(batch, env, epoch, verdict, delta) for each epoch where a host's verdict changes, in the
    order of the epochs of each (batch, env)."""
    expected = []
    for (batch, env), accuracies in _per_host(events, "val_accuracy").items():
        last = None
        for end in range(2 * o.window, len(accuracies) + 1):
            older = accuracies[end - 2 * o.window:end - o.window]
            recent = accuracies[end - o.window:end]
            delta = sum(recent) / o.window - sum(older) / o.window
            current = verdict(delta, o)
            if current is not last and current is not None:
                expected.append((batch, env, end - 1, current, delta))
            last = current
    return expected


def recorded_trends(events: Iterable[TelemetryEvent]) -> list[tuple[int, int, int, T, float]]:
    """The trend events of a run in the same shape, sorted by host then epoch."""
    return sorted(((e.batch, e.env_id, e.epoch, e.event_type, e.data.delta)
                   for e in events if e.event_type in TRENDS), key=lambda t: t[:3])


def expected_initiations(events: Iterable[TelemetryEvent],
                         config: SignalsConfig) -> list[tuple[int, int, int]]:
    """(batch, env, epoch) of the epoch each host first counts as stabilised: the first run of
    `stabilisation_epochs` epochs whose relative val-loss change lies within the band."""
    expected = []
    for (batch, env), losses in _per_host(events, "val_loss").items():
        if config.stabilisation_epochs == 0:
            expected.append((batch, env, 0))
            continue
        steady = 0
        for epoch in range(1, len(losses)):
            change = (losses[epoch] - losses[epoch - 1]) / losses[epoch - 1]
            in_band = config.stabilisation_min_change <= change <= config.stabilisation_max_change
            steady = steady + 1 if in_band else 0
            if steady >= config.stabilisation_epochs:
                expected.append((batch, env, epoch))
                break
    return expected
