"""The first event at which two runs' event streams differ (DESIGN.md section 3: with the same
experiment and seed, streams are identical except for ``ts`` and wall-clock fields).

The streams are compared in SQL, joined on (run_id, seq) through the unique index: the envelope
columns and the payload text. Payloads of the event types that carry wall-clock fields are
compared with those fields removed (``json_remove``); only the first differing pair is decoded,
to name the fields that differ.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from esper.leyline.events import TelemetryEventType
from esper.registry import Registry

_T = TelemetryEventType
_MAX_SLOTS = 8  # slot ids r0c0..r0c7 (schemas/experiment.schema.json, slots.enabled)

#: Payload fields that are wall-clock durations or times, by event type (``[*]``: any index).
WALL_CLOCK_FIELDS: dict[TelemetryEventType, tuple[str, ...]] = {
    _T.PPO_UPDATE_COMPLETED: ("update_time_ms",),
    _T.THROUGHPUT_MEASURED: ("step_time_ms", "dataloader_wait_ms", "fps"),
    _T.EPOCH_COMPLETED: ("slots[*].telemetry.captured_at",),  # seed_telemetry probe
}
_ENVELOPE = ("event_type", "severity", "batch", "env_id", "epoch", "seed_id", "slot_id", "message")
_PAGE = 200  # candidate pairs fetched at a time


def _stripped(alias: str) -> str:
    """SQL: the payload text of event `alias` without its wall-clock fields (as is when SQLite
    cannot read its JSON: NaN / Infinity tokens; the Python check then decides)."""
    cases = []
    for event_type, names in WALL_CLOCK_FIELDS.items():
        paths = [name.replace("[*]", f"[{i}]") for name in names
                 for i in range(_MAX_SLOTS if "[*]" in name else 1)]
        cases.append(f"WHEN '{event_type.value}' THEN json_remove({alias}.data, "
                     + ", ".join(f"'$.{path}'" for path in paths) + ")")
    return (f"CASE WHEN json_valid({alias}.data) THEN CASE {alias}.event_type {' '.join(cases)} "
            f"END ELSE {alias}.data END")


_VOLATILE_TYPES = ", ".join(f"'{t.value}'" for t in WALL_CLOCK_FIELDS)
_CANDIDATES = f"""
    SELECT a.seq, {', '.join(f'a.{c}, b.{c}' for c in _ENVELOPE)}, a.data, b.data
      FROM events AS a JOIN events AS b ON b.run_id = ? AND b.seq = a.seq
     WHERE a.run_id = ? AND a.seq > ? AND (
           {' OR '.join(f'a.{c} IS NOT b.{c}' for c in _ENVELOPE)}
           OR (a.data != b.data AND (a.event_type NOT IN ({_VOLATILE_TYPES})
                                     OR {_stripped('a')} != {_stripped('b')})))
     ORDER BY a.seq LIMIT {_PAGE}
"""


@dataclass(frozen=True)
class FieldDifference:
    """One field of the first differing pair: an envelope column, or ``data.<path>``."""

    field: str
    a: Any
    b: Any


@dataclass(frozen=True)
class Divergence:
    """How the event streams of runs `run_a` and `run_b` compare."""

    run_a: str
    run_b: str
    identical: bool
    events_a: int
    events_b: int
    seq: int | None = None  # the first differing event; None when identical
    event_type_a: str | None = None  # None: run a has no event at `seq`
    event_type_b: str | None = None
    fields: list[FieldDifference] = field(default_factory=list)


def first_divergence(registry: Registry, run_a: str, run_b: str) -> Divergence:
    """Compare the event streams of two runs, ignoring ``ts`` and ``WALL_CLOCK_FIELDS``."""
    (count_a,), (count_b,) = (registry.query(
        "SELECT count(*) FROM events WHERE run_id = ?", [run_id])[0] for run_id in (run_a, run_b))
    after = -1
    while True:
        page = registry.query(_CANDIDATES, [run_b, run_a, after])
        for row in page:
            fields = _differences(row)
            if fields:
                return Divergence(run_a, run_b, False, count_a, count_b, row[0], row[1], row[2],
                                  fields)
        if len(page) < _PAGE:
            break
        after = page[-1][0]
    if count_a == count_b:
        return Divergence(run_a, run_b, True, count_a, count_b)
    seq = min(count_a, count_b)  # seqs are 0..n-1: the shorter stream ends here
    longer = run_a if count_a > count_b else run_b
    (event_type,) = registry.query(
        "SELECT event_type FROM events WHERE run_id = ? AND seq = ?", [longer, seq])[0]
    type_a, type_b = (event_type, None) if longer == run_a else (None, event_type)
    return Divergence(run_a, run_b, False, count_a, count_b, seq, type_a, type_b,
                      [FieldDifference("event_type", type_a, type_b)])


def _differences(row: tuple[Any, ...]) -> list[FieldDifference]:
    """The fields of a candidate pair that differ, wall-clock fields left out (a candidate may
    differ only in them when SQLite could not read its JSON)."""
    found = [FieldDifference(column, row[1 + 2 * i], row[2 + 2 * i])
             for i, column in enumerate(_ENVELOPE) if row[1 + 2 * i] != row[2 + 2 * i]]
    event_type, data_a, data_b = row[1], row[-2], row[-1]
    if data_a == data_b:
        return found
    ignored = set(WALL_CLOCK_FIELDS.get(_T(event_type), ())) if event_type == row[2] else set()
    flat_a, flat_b = _flatten(json.loads(data_a)), _flatten(json.loads(data_b))
    for key in list(dict.fromkeys([*flat_a, *flat_b])):
        if re.sub(r"\[\d+\]", "[*]", key) in ignored:
            continue
        a, b = flat_a.get(key), flat_b.get(key)
        if not _same(a, b):
            found.append(FieldDifference(f"data.{key}", a, b))
    return found


def _same(a: Any, b: Any) -> bool:
    both_nan = isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)
    return both_nan or (a == b and type(a) is type(b))


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """A JSON value as {dotted.path[i]: leaf}; an empty list or object is a leaf."""
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}" if prefix else key))
        return out
    if isinstance(value, list) and value:
        out = {}
        for i, item in enumerate(value):
            out.update(_flatten(item, f"{prefix}[{i}]"))
        return out
    return {prefix: value}
