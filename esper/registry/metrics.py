"""The ``metrics`` table: scalar series (key, step, value) per run, derived from events."""

from __future__ import annotations

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
        MetricSummary(key, count, first, last_step, last, low, high)
        for key, count, first, last_step, low, high, last in rows
    ]
