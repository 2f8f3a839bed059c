"""The first event at which two runs' event streams differ (DESIGN.md section 3: with the same
experiment and seed, streams are identical except for ``ts`` and wall-clock fields).

The streams are compared in one SQL scan: the envelope columns and the payload text of each pair
of events with the same seq. Payloads of the event types that carry wall-clock fields are
compared with those fields removed (``json_remove``) when their texts differ; only candidate
pairs are decoded in Python, to confirm a difference and name its fields.

Run a's events are read through the unique (run_id, seq) index; run b's event of the same seq
is looked up by id (see `_candidates`). Long streams are scanned in two halves at once, on two
connections (see `_split`).
"""

from __future__ import annotations

import math
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any

import msgspec

from esper.experiment.config_diff import flatten
from esper.leyline.codec import decode_payload
from esper.leyline.events import TelemetryEventType
from esper.registry import Registry, connection

_T = TelemetryEventType
_MAX_SLOTS = 8  # slot ids r0c0..r0c7 (schemas/experiment.schema.json, slots.enabled)

#: Payload fields that are wall-clock durations or times, by event type (``[*]``: any index),
#: and the memory probe's readings of the process (its resident memory differs from one process
#: to the next: two runs of the same config and seed would always diverge there).
WALL_CLOCK_FIELDS: dict[TelemetryEventType, tuple[str, ...]] = {
    _T.PPO_UPDATE_COMPLETED: ("update_time_ms",),
    _T.THROUGHPUT_MEASURED: ("step_time_ms", "dataloader_wait_ms", "fps"),
    _T.EPOCH_COMPLETED: ("slots[*].telemetry.captured_at",),  # seed_telemetry probe
    _T.BATCH_COMPLETED: ("rss_mb", "cuda_allocated_mb", "cuda_reserved_mb"),  # memory probe
}
_ENVELOPE = ("event_type", "severity", "batch", "env_id", "epoch", "seed_id", "slot_id", "message")

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


def _stripped(alias: str) -> str:
    """SQL: the payload text of event `alias` without its wall-clock fields."""
    cases = []
    for event_type, names in WALL_CLOCK_FIELDS.items():
        paths = [name.replace("[*]", f"[{i}]") for name in names
                 for i in range(_MAX_SLOTS if "[*]" in name else 1)]
        cases.append(f"WHEN '{event_type.value}' THEN json_remove({alias}.data, "
                     + ", ".join(f"'$.{path}'" for path in paths) + ")")
    return f"CASE {alias}.event_type {' '.join(cases)} END"


def _unreadable(alias: str) -> str:
    """SQL: payload `alias` holds a NaN or an infinity. Registries written before issue 20 hold
    them as bare NaN / Infinity tokens, which SQLite 3.40's JSON rejects and newer versions read
    as JSON5, writing NaN as null; such a pair is left to Python, as is one whose floats are
    named ("NaN", "Infinity"), where the codec reads them as floats. (``instr`` is cheaper than a
    ``json_valid`` parse; a string holding "NaN" is merely decoded.)"""
    return f"instr({alias}.data, 'NaN') OR instr({alias}.data, 'Infinity')"


_VOLATILE_TYPES = ", ".join(f"'{t.value}'" for t in WALL_CLOCK_FIELDS)
#: SQL: the pair (a, b) may differ; CASE evaluates in order, so JSON is parsed only for payload
#: texts that differ, of a type with wall-clock fields, that SQLite can read.
_MAY_DIFFER = f"""CASE
    WHEN {' OR '.join(f'a.{c} IS NOT b.{c}' for c in _ENVELOPE)} THEN 1
    WHEN a.data = b.data THEN 0
    WHEN a.event_type NOT IN ({_VOLATILE_TYPES}) THEN 1
    WHEN {_unreadable('a')} OR {_unreadable('b')} THEN 1
    ELSE {_stripped('a')} != {_stripped('b')} END"""
_PAIR = f"a.seq, {', '.join(f'a.{c}, b.{c}' for c in _ENVELOPE)}, a.data, b.data"
#: Candidate pairs of seq ?2 < seq <= ?4 through the (run_id, seq) index: params run a, ?2,
#: run b, ?4. Columns: seq, aligned (always 1 here), the pair.
_BY_SEQ = f"""
    SELECT a.seq, 1, {_PAIR}
      FROM events AS a JOIN events AS b ON b.run_id = ?3 AND b.seq = a.seq
     WHERE a.run_id = ?1 AND a.seq > ?2 AND a.seq <= ?4 AND {_MAY_DIFFER}
     ORDER BY a.seq
"""
#: The same, b's event looked up at a's id + ?5 (params: those of ``_BY_SEQ``, shift). A pair
#: not aligned (no event of run b with a's seq at that id) is a candidate too, with aligned 0.
_BY_ID = f"""
    SELECT a.seq, b.run_id IS ?3 AND b.seq IS a.seq, {_PAIR}
      FROM events AS a LEFT JOIN events AS b ON b.id = a.id + ?5
     WHERE a.run_id = ?1 AND a.seq > ?2 AND a.seq <= ?4
       AND (b.run_id IS NOT ?3 OR b.seq IS NOT a.seq OR {_MAY_DIFFER})
     ORDER BY a.seq
"""
_SHIFT = """
    SELECT (SELECT id FROM events WHERE run_id = ?3 AND seq = ?2)
         - (SELECT id FROM events WHERE run_id = ?1 AND seq = ?2)
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
    """Compare the event streams of two runs, ignoring ``ts`` and ``WALL_CLOCK_FIELDS``.

    The scan reads connections of its own (not the registry's, which fetches whole results):
    it stops at the first difference, and can run while another thread uses `registry`."""
    with closing(connection.connect(registry.path, create=False).conn) as conn:
        counts = dict(conn.execute(  # kept by the registry as events are written
            "SELECT run_id, event_count FROM runs WHERE run_id IN (?, ?)", [run_a, run_b]))
        count_a, count_b = counts[run_a], counts[run_b]
        unpaired = _first_unpaired(conn, run_a, run_b, count_a, count_b)
        last = _LAST if unpaired is None else unpaired - 1  # the pairs before it
        shared = min(count_a, count_b)
        if shared < _SPLIT:
            found = _first_difference(_candidates(conn, run_a, run_b, -1, last))
        else:
            with closing(connection.connect(registry.path, create=False).conn) as upper:
                found = _split(conn, upper, run_a, run_b, shared // 2, last)
        if found is not None:
            row, fields = found
            return Divergence(run_a, run_b, False, count_a, count_b, row[0], row[3], row[4],
                              fields)
        if unpaired is None:
            return Divergence(run_a, run_b, True, count_a, count_b)
        type_a, type_b = ((conn.execute(
            "SELECT event_type FROM events WHERE run_id = ? AND seq = ?", [run, unpaired]
        ).fetchone() or (None,))[0] for run in (run_a, run_b))
    return Divergence(run_a, run_b, False, count_a, count_b, unpaired, type_a, type_b,
                      [FieldDifference("event_type", type_a, type_b)])


_MAX_SEQ = "SELECT max(seq) FROM events WHERE run_id = ?"
#: The first seq of run ?1 that run ?2 has no event at.
_FIRST_MISSING = """
    SELECT min(a.seq) FROM events AS a
     WHERE a.run_id = ?1
       AND NOT EXISTS (SELECT 1 FROM events AS b WHERE b.run_id = ?2 AND b.seq = a.seq)
"""


def _first_unpaired(conn: sqlite3.Connection, run_a: str, run_b: str, count_a: int,
                    count_b: int) -> int | None:
    """The first seq at which one run has an event and the other has none; None when both
    have the same seqs. A stream whose seqs are 0..count-1 lost nothing (one index lookup);
    one with gaps (lost events, DESIGN.md section 3) is searched for the first unpaired seq, so
    a lost event is a divergence where it was lost, not where the stream ends."""
    max_a, max_b = (conn.execute(_MAX_SEQ, [run]).fetchone()[0] for run in (run_a, run_b))
    if (max_a in (None, count_a - 1)) and (max_b in (None, count_b - 1)):
        return None if count_a == count_b else min(count_a, count_b)
    found = [conn.execute(_FIRST_MISSING, pair).fetchone()[0]
             for pair in ([run_a, run_b], [run_b, run_a])]
    return min((seq for seq in found if seq is not None), default=None)


_Found = tuple[tuple[Any, ...], list[FieldDifference]]
#: Pairs from which the seqs from the middle on are scanned at the same time in a worker thread
#: (the sqlite3 module releases the GIL while SQLite runs).
_SPLIT = 50_000
_LAST = 2**62  # no last seq


def _split(lower: sqlite3.Connection, upper: sqlite3.Connection, run_a: str, run_b: str,
           middle: int, last: int = _LAST) -> _Found | None:
    """The first pair that differs: seqs below `middle` scanned on `lower`, the others (up to
    `last`) at the same time on `upper` in a worker thread, interrupted when the lower half has
    the answer."""
    stop = threading.Event()

    def scan_upper() -> _Found | None:
        try:
            return _first_difference(_candidates(upper, run_a, run_b, middle - 1, last, stop))
        except sqlite3.OperationalError:  # interrupted
            if stop.is_set():
                return None
            raise

    pool = ThreadPoolExecutor(1, thread_name_prefix="esper-divergence")
    upper_found = pool.submit(scan_upper)
    try:
        found = _first_difference(_candidates(lower, run_a, run_b, -1, min(middle - 1, last)))
        return found if found is not None else upper_found.result()
    finally:
        stop.set()
        while not wait([upper_found], timeout=0.01).done:
            upper.interrupt()  # again: a query started just before `stop` was set clears it
        pool.shutdown()


def _candidates(conn: sqlite3.Connection, run_a: str, run_b: str, after: int, last: int,
                stop: threading.Event | None = None) -> Iterator[tuple[Any, ...]]:
    """The pairs of events with the same seq, after < seq <= last, that may differ, in seq
    order (until `stop` is set).

    Run b's event is looked up at run a's id + shift: a step of the table cursor, where the
    (run_id, seq) index would search. A run written alone has its events at consecutive ids,
    so one shift pairs them all; where it misses (concurrent runs interleave their batches),
    the shift is measured again at that seq; where run b has no event at that seq, the rest is
    paired through the index.
    """
    shift = conn.execute(_SHIFT, [run_a, after + 1, run_b]).fetchone()[0]
    while shift is not None and not (stop and stop.is_set()):
        with closing(conn.execute(_BY_ID, [run_a, after, run_b, last, shift])) as rows:
            for row in rows:
                if not row[1]:
                    after = row[0] - 1
                    shift = conn.execute(_SHIFT, [run_a, row[0], run_b]).fetchone()[0]
                    break
                yield row
            else:
                return
    if not (stop and stop.is_set()):
        with closing(conn.execute(_BY_SEQ, [run_a, after, run_b, last])) as rows:
            yield from rows


def _first_difference(candidates: Iterable[tuple[Any, ...]]) -> _Found | None:
    """The first candidate pair that really differs, with its differing fields."""
    for row in candidates:
        fields = _differences(row[3:])
        if fields:
            return row, fields
    return None


def _differences(pair: tuple[Any, ...]) -> list[FieldDifference]:
    """The fields that differ in `pair` (the envelope columns of a and b in turn, then both
    payloads), wall-clock fields left out (a candidate may differ only in them when its payload
    holds NaN or Infinity)."""
    found = [FieldDifference(column, pair[2 * i], pair[2 * i + 1])
             for i, column in enumerate(_ENVELOPE) if pair[2 * i] != pair[2 * i + 1]]
    event_type, data_a, data_b = pair[0], pair[-2], pair[-1]
    if data_a == data_b:
        return found
    ignored = set(WALL_CLOCK_FIELDS.get(_T(event_type), ())) if event_type == pair[1] else set()
    flat_a, flat_b = (_flatten(msgspec.to_builtins(decode_payload(_T(kind), data)))
                      for kind, data in ((event_type, data_a), (pair[1], data_b)))
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
