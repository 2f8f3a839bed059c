"""The first event at which two runs' event streams differ (docs/architecture.md §3: with the same
experiment and seed, streams are identical except for ``ts`` and the wall-clock fields of
``esper.leyline.determinism``).

Both streams are read through the registry in seq order, page by page, with their payloads
undecoded (``Registry.event_rows``), and walked side by side: a pair of events with the same
seq whose envelope columns and payload texts are equal is the same event; only the other pairs
are decoded, to confirm a difference (wall-clock fields left out) and name its fields. A seq
that one run has and the other has not (a lost event, or the end of the shorter stream) is a
divergence there.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import zip_longest
from typing import Any

import msgspec

from esper.experiment.config_diff import flatten
from esper.leyline.codec import decode_payload
from esper.leyline.determinism import WALL_CLOCK_FIELDS, drop_wall_clock, is_wall_clock
from esper.leyline.events import TelemetryEventType
from esper.registry import Registry
from esper.registry.events import EventRow

_T = TelemetryEventType
_ENVELOPE = ("event_type", "severity", "batch", "env_id", "epoch", "seed_id", "slot_id", "message")
_COMPARED = slice(2, None)  # EventRow from event_type on: the envelope (ts aside), the payload
_ENVELOPE_COLUMNS = slice(2, -1)  # the envelope alone
_VOLATILE = {kind.value: kind for kind in WALL_CLOCK_FIELDS}  # types with wall-clock fields
_read_json = msgspec.json.Decoder().decode
_PAGE = 2_000  # events of each run read at a time

#: Config keys (and the keys below them) that cannot change a run's event stream: two runs
#: whose configs differ only in these still get a determinism verdict. Each is read only
#: outside the training loop, never by what emits events:
#: - description: notes stored with the run (unlike `name`, which TRAINING_STARTED carries);
#: - tracking: where the run is recorded (MLflow on or off, its uri, experiment and tags): read
#:   by the sinks that consume the stream, not by what produces it;
#: - training.replicates: how many runs a replicate group has; each run is the experiment with
#:   its own seed, and `seed` itself is compared;
#: - regression: read by esper regress after the run; sweep: read by esper sweep to plan
#:   trials, ignored by esper run (a trial's config has no sweep).
STREAM_NEUTRAL_KEYS = ("description", "tracking", "training.replicates", "regression", "sweep")


def same_stream_config(config_a: Mapping[str, Any], config_b: Mapping[str, Any]) -> bool:
    """Whether two resolved run configs differ in no key that can change the event stream
    (`STREAM_NEUTRAL_KEYS` aside): two runs of such configs must have identical streams."""
    return _stream_keys(config_a) == _stream_keys(config_b)


def _stream_keys(config: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in flatten(dict(config)).items()
            if not any(key == neutral or key.startswith(f"{neutral}.")
                       for neutral in STREAM_NEUTRAL_KEYS)}


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
    """Compare the event streams of two runs, ignoring ``ts`` and ``WALL_CLOCK_FIELDS``.

    Reads both streams through `registry` page by page, and stops at the first difference.

    Raises:
        RunNotFound: no run `run_a` or `run_b`.
    """
    count_a, count_b = (registry.run(run).event_count for run in (run_a, run_b))
    for a, b in zip_longest(registry.event_rows(run_a, page=_PAGE),
                            registry.event_rows(run_b, page=_PAGE)):
        if a is None or b is None or a.seq != b.seq:  # a seq only one of the runs has
            seq = min(row.seq for row in (a, b) if row is not None)
            type_a, type_b = (row.event_type if row is not None and row.seq == seq else None
                              for row in (a, b))
            return Divergence(run_a, run_b, False, count_a, count_b, seq, type_a, type_b,
                              [FieldDifference("event_type", type_a, type_b)])
        if a[_COMPARED] != b[_COMPARED]:
            fields = _differences(a, b)
            if fields:
                return Divergence(run_a, run_b, False, count_a, count_b, a.seq, a.event_type,
                                  b.event_type, fields)
    return Divergence(run_a, run_b, True, count_a, count_b)


def _differences(a: EventRow, b: EventRow) -> list[FieldDifference]:
    """The fields that differ between events `a` and `b` of the same seq (envelope columns,
    then ``data.<path>``), wall-clock fields left out when both have the same type."""
    found = [] if a[_ENVELOPE_COLUMNS] == b[_ENVELOPE_COLUMNS] else [
        FieldDifference(column, getattr(a, column), getattr(b, column))
        for column in _ENVELOPE if getattr(a, column) != getattr(b, column)]
    if a.data == b.data or (not found and _same_but_clock(a.event_type, a.data, b.data)):
        return found
    type_a, type_b = _T(a.event_type), _T(b.event_type)
    flat_a, flat_b = (_flatten(msgspec.to_builtins(decode_payload(kind, data)))
                      for kind, data in ((type_a, a.data), (type_b, b.data)))
    for key in dict.fromkeys([*flat_a, *flat_b]):
        if type_a is type_b and is_wall_clock(type_a, key):
            continue
        value_a, value_b = flat_a.get(key), flat_b.get(key)
        if not _same(value_a, value_b):
            found.append(FieldDifference(f"data.{key}", value_a, value_b))
    return found


def _same_but_clock(event_type: str, data_a: str, data_b: str) -> bool:
    """Payload texts of one event type that are equal once their wall-clock fields are gone:
    the usual pair of a type with such fields, told apart without the typed decode. Their JSON
    is read as plain values (NaN as the codec's "NaN" text); False when it cannot be (bare NaN
    tokens of old registries) or the values differ: the typed comparison decides."""
    kind = _VOLATILE.get(event_type)
    if kind is None:
        return False
    try:
        payload_a, payload_b = _read_json(data_a), _read_json(data_b)
    except msgspec.DecodeError:
        return False
    return drop_wall_clock(kind, payload_a) == drop_wall_clock(kind, payload_b)


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
