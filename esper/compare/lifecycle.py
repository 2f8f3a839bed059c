"""Counts of one run by the registry's aggregates (``esper.registry.queries``): seed lifecycle
per blueprint, gate failures per check, events per type, anomalies, and the wiring outcome of
every field.

Keys are the row labels of `esper compare` ("germinated conv_light", "gate failure
improvement", ...).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from esper.leyline.catalogue import field_label
from esper.leyline.events import TelemetryEventType
from esper.registry import Registry

_T = TelemetryEventType
_LIFECYCLE = {_T.SEED_GERMINATED: "germinated", _T.SEED_FOSSILIZED: "fossilized",
              _T.SEED_PRUNED: "pruned"}

#: Events that report something wrong (probe detections, governor rollbacks).
ANOMALY_TYPES = (
    _T.GOVERNOR_ROLLBACK, _T.RATIO_EXPLOSION_DETECTED, _T.RATIO_COLLAPSE_DETECTED,
    _T.VALUE_COLLAPSE_DETECTED, _T.NUMERICAL_INSTABILITY_DETECTED,
    _T.GRADIENT_PATHOLOGY_DETECTED, _T.LSTM_HEALTH_WARNING, _T.MEMORY_WARNING,
    _T.REWARD_HACKING_SUSPECTED, _T.DEGRADATION_DETECTED,
)


def field_counts(
    registry: Registry, run_id: str, types: Sequence[TelemetryEventType], field: str
) -> Counter[tuple[str, Any]]:
    """(event type, value of payload `field`) -> number of the run's events of `types`."""
    return registry.field_counts(run_id, types, field)


def lifecycle_counts(registry: Registry, run_id: str) -> dict[str, int]:
    """"germinated|fossilized|pruned <blueprint>" -> seeds, "gate failure <check>" -> failed
    gate evaluations naming that check (gate_events probe). (Governor rollbacks are anomalies.)"""
    counts: dict[str, int] = {}
    for (event_type, blueprint), count in sorted(
            field_counts(registry, run_id, list(_LIFECYCLE), "blueprint").items()):
        counts[f"{_LIFECYCLE[_T(event_type)]} {blueprint}"] = count
    for check, count in registry.gate_failure_counts(run_id):
        counts[f"gate failure {check}"] = count
    return counts


def event_counts(registry: Registry, run_id: str) -> dict[str, int]:
    """Event type -> number of the run's events of that type."""
    return dict(registry.event_counts(run_id))


def anomaly_counts(events: dict[str, int]) -> dict[str, int]:
    """Anomaly event type -> count, for every type of ``ANOMALY_TYPES`` (0: none happened), from
    a run's `event_counts`."""
    return {t.value: events.get(t.value, 0) for t in ANOMALY_TYPES}


def wiring_outcomes(registry: Registry, run_id: str) -> dict[str, str]:
    """"<TELE id> <field>" -> wiring outcome (PASS, FAIL, XFAIL, XPASS, SKIP) of the run."""
    return {field_label(str(row["tele_id"]), str(row["field"])): str(row["outcome"])
            for row in registry.wiring(run_id)}
