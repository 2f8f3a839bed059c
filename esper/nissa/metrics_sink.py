"""The sink that fills the registry's ``metrics`` table: a run's scalar series, derived from its
events as they pass, with the mapping MLflow uses (``MetricMapper``)."""

from __future__ import annotations

from esper.leyline.events import TelemetryEvent
from esper.nissa.metric_series import MetricMapper
from esper.registry import Registry


class MetricsSink:
    """Appends the metric points of each batch of events in one registry transaction, so the
    series of a run that crashes are there up to its last batch, and nothing is read back.

    A stream the mapping refuses (an epoch before TRAINING_STARTED) fails ``write``: the hub
    reports it against this sink like any failing sink. Closing leaves the registry open.
    """

    name = "metrics"

    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._mapper = MetricMapper()

    def write(self, events: list[TelemetryEvent]) -> None:
        points = self._mapper.points(events)
        if points:
            self._registry.append_metrics(events[0].run_id, points)

    def close(self) -> None:
        """Nothing to release: the registry belongs to the caller."""
