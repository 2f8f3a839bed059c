"""Named read queries over runs, events and metrics for the analyses (``esper.compare``): each
one SQL statement, so the analyses never write SQL. ``Registry`` exposes each as a method of
the same name, under its lock.

Payload fields are read with SQLite's JSON functions; a payload they cannot read (it holds a
NaN or Infinity token, which SQLite 3.40's JSON rejects) is decoded in Python, so no event is
left out. A NULL ``metrics.value`` is a measured NaN (see ``esper.registry.metrics``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlite_utils import Database

from esper.leyline.codec import decode_payload
from esper.leyline.events import TelemetryEventType
from esper.registry.metrics import nan_if_null


class SeriesStats(NamedTuple):
    """Aggregates of one metric series; ``high`` and ``mean`` skip NaN points (stored NULL) and
    are None when every point is NaN or there is none."""

    points: int
    numbers: int  # points that are not NaN
    high: float | None
    mean: float | None


def field_counts(db: Database, run_id: str, types: Sequence[TelemetryEventType],
                 field: str) -> Counter[tuple[str, Any]]:
    """(event type, value of payload `field`) -> number of the run's events of `types`."""
    if not field.isidentifier():
        raise ValueError(f"not a payload field name: {field!r}")
    marks = ",".join("?" * len(types))
    rows = db.execute(
        f"SELECT event_type, CASE WHEN json_valid(data) THEN json_extract(data, '$.{field}') END,"
        f" CASE WHEN json_valid(data) THEN NULL ELSE data END, count(*) FROM events"
        f" WHERE run_id = ? AND event_type IN ({marks}) GROUP BY 1, 2, 3",
        [run_id, *(t.value for t in types)]).fetchall()
    counts: Counter[tuple[str, Any]] = Counter()
    for event_type, value, unread, count in rows:
        if unread is not None:
            value = getattr(decode_payload(TelemetryEventType(event_type), unread), field)
        counts[event_type, value] += count
    return counts


def gate_failure_counts(db: Database, run_id: str) -> list[tuple[str, int]]:
    """(check, failed SEED_GATE_EVALUATED events naming it) of a run, by check."""
    # SeedGateEvaluatedPayload has no float field: its JSON is always valid for SQLite.
    return db.execute(
        "SELECT j.value, count(*) FROM events, json_each(events.data, '$.checks_failed') AS j"
        " WHERE run_id = ? AND event_type = ? GROUP BY j.value ORDER BY j.value",
        [run_id, TelemetryEventType.SEED_GATE_EVALUATED.value]).fetchall()


def last_metric(db: Database, run_id: str, key: str) -> float | None:
    """The value of series `key` at its last step (the last written of that step); None when
    the run never measured it, NaN for a measured NaN."""
    row = db.execute(
        "SELECT value FROM metrics WHERE run_id = ? AND key = ?"
        " ORDER BY step DESC, rowid DESC LIMIT 1", [run_id, key]).fetchone()
    return None if row is None else nan_if_null(row[0])


def series_stats(db: Database, run_id: str, key: str) -> SeriesStats:
    """Points, numbers, max and mean of series `key` (a range of the metrics index)."""
    return SeriesStats(*db.execute(
        "SELECT count(*), count(value), max(value), avg(value) FROM metrics"
        " WHERE run_id = ? AND key = ?", [run_id, key]).fetchone())


def mean_by_step(db: Database, run_id: str, keys: str, not_keys: str | None = None
                 ) -> list[tuple[int, float | None]]:
    """(step, mean over the series whose key matches the GLOB `keys` and not `not_keys`), by
    step; the mean is None at a step where one of them is NaN (stored NULL)."""
    return db.execute(
        "SELECT step, CASE WHEN count(value) = count(*) THEN avg(value) END FROM metrics"
        " WHERE run_id = ? AND key GLOB ? AND key NOT GLOB ? GROUP BY step ORDER BY step",
        [run_id, keys, "" if not_keys is None else not_keys]).fetchall()


def group_ids(db: Database, prefix: str) -> list[str]:
    """The replicate group ids that start with `prefix`, sorted."""
    return [row[0] for row in db.execute(
        "SELECT DISTINCT group_id FROM runs WHERE substr(group_id, 1, ?) = ? ORDER BY group_id",
        [len(prefix), prefix])]


def latest_group_ids(db: Database, limit: int) -> list[str]:
    """The `limit` replicate group ids with the latest runs, latest first."""
    return [row[0] for row in db.execute(
        "SELECT group_id FROM runs WHERE group_id IS NOT NULL"
        " GROUP BY group_id ORDER BY max(started_at) DESC LIMIT ?", [limit])]
