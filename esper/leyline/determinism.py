"""The determinism rule of the event contract (docs/architecture.md §3): two runs of the same
experiment and seed write identical event streams, except for the envelope's ``ts`` and the
payload fields named here, which read the wall clock or the process.

A field path is dotted, ``[*]`` standing for any index of a tuple field
(``slots[*].telemetry.captured_at``). tests/compare/test_wall_clock_rule.py keeps both tables
in step with the payload classes of ``esper.leyline.events``: every path names a float field of
its payload, and every float field named like a reading (``*_s``, ``*_ms``, ``*_mb``, ``*_at``,
``fps``, ``ts``, ...) is in one of the two tables.
"""

from __future__ import annotations

import re
from typing import Any

from esper.leyline.events import TelemetryEventType

_T = TelemetryEventType

#: Payload fields that are wall-clock durations or times, by event type, and the memory probe's
#: readings of the process (its resident memory differs from one process to the next: two runs
#: of the same config and seed would always diverge there).
WALL_CLOCK_FIELDS: dict[TelemetryEventType, tuple[str, ...]] = {
    _T.PPO_UPDATE_COMPLETED: ("update_time_ms",),
    _T.THROUGHPUT_MEASURED: ("step_time_ms", "dataloader_wait_ms", "fps"),
    _T.EPOCH_COMPLETED: ("slots[*].telemetry.captured_at",),  # seed_telemetry probe
    _T.BATCH_COMPLETED: ("rss_mb", "cuda_allocated_mb", "cuda_reserved_mb"),  # memory probe
}

#: Fields named like a reading that a determinism check still compares, each with the reason.
NOT_WALL_CLOCK: dict[TelemetryEventType, dict[str, str]] = {
    _T.MEMORY_WARNING: {
        "threshold_mb": "the config's memory.rss_warning_mb",
        # Readings of the process, but the event itself is written only when rss_mb crosses the
        # threshold, so whether it exists already differs between processes: ignoring its
        # fields would not make two such streams comparable.
        "rss_mb": "the event's presence depends on it",
        "cuda_allocated_mb": "read with rss_mb, in an event whose presence depends on rss_mb",
    },
}

_INDEX = re.compile(r"\[\d+\]")


def is_wall_clock(event_type: TelemetryEventType, path: str) -> bool:
    """Whether payload field `path` (dotted, with concrete indexes such as ``slots[2].x``) of
    an event of `event_type` is one of its ``WALL_CLOCK_FIELDS``."""
    return _INDEX.sub("[*]", path) in WALL_CLOCK_FIELDS.get(event_type, ())


def drop_wall_clock(event_type: TelemetryEventType, payload: dict[str, Any]) -> dict[str, Any]:
    """Remove the ``WALL_CLOCK_FIELDS`` of `event_type` from `payload` (a payload as plain
    dicts and lists, e.g. ``msgspec.to_builtins``), in place; returns `payload`."""
    for path in WALL_CLOCK_FIELDS.get(event_type, ()):
        _drop(payload, path.split("."))
    return payload


def _drop(value: Any, parts: list[str]) -> None:
    if not isinstance(value, dict):
        return  # None: an optional part that was not measured
    head, rest = parts[0], parts[1:]
    if head.endswith("[*]"):
        for item in value.get(head[:-3]) or ():
            _drop(item, rest)
    elif rest:
        _drop(value.get(head), rest)
    else:
        value.pop(head, None)
