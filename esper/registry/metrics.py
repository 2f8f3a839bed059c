"""The ``metrics`` table: scalar series (key, step, value) per run, derived from events.

A point is written only for a measured value, so a NULL value is a measured NaN: SQLite stores
a NaN REAL as NULL. Readers turn it back into NaN (``nan_if_null``), never into "not measured".
"""

from __future__ import annotations

import math

from sqlite_utils import Database

from esper.registry.records import MetricSummary


def summarise_metrics(db: Database, run_id: str) -> list[MetricSummary]:
    """Count, step range, last / min / max value of every metric key of a run, by key."""
    rows = db.execute(
        """
        SELECT key, count(*), min(step), max(step), min(value), max(value),
               (SELECT value FROM metrics AS last
                 WHERE last.run_id = m.run_id AND last.key = m.key
                 ORDER BY step DESC, rowid DESC LIMIT 1)
          FROM metrics AS m
         WHERE run_id = ?
         GROUP BY key
         ORDER BY key
        """,
        [run_id],
    ).fetchall()
    return [
        MetricSummary(key, count, first, last_step, *map(nan_if_null, (last, low, high)))
        for key, count, first, last_step, low, high, last in rows
    ]


def nan_if_null(value: float | None) -> float:
    """A ``metrics.value`` as measured: NULL is a NaN that SQLite could not store."""
    return math.nan if value is None else value
