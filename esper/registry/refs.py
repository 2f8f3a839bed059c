"""Resolving a run reference: a full run id, a unique id prefix, or a name (the latest run)."""

from __future__ import annotations

import difflib
import re
from datetime import datetime

from sqlite_utils import Database

from esper.registry.errors import AmbiguousRun, RunNotFound

_HEX = re.compile(r"[0-9a-f]+")
_SHOWN = 8  # candidates listed in an error message at most


def resolve_ref(db: Database, ref: str) -> str:
    """The run id ``ref`` refers to, tried in order: exact id, name (latest), unique id prefix.

    Raises:
        AmbiguousRun: ``ref`` is a prefix of several run ids (the message lists them).
        RunNotFound: nothing matches (the message lists similar names, or the latest runs).
    """
    exact = db.execute("SELECT run_id FROM runs WHERE run_id = ?", [ref]).fetchone()
    if exact:
        return exact[0]
    named = db.execute(
        "SELECT run_id FROM runs WHERE name = ? ORDER BY started_at DESC, rowid DESC LIMIT 1", [ref]
    ).fetchone()
    if named:
        return named[0]
    if _HEX.fullmatch(ref):
        rows = db.execute(
            "SELECT run_id, name, started_at FROM runs WHERE substr(run_id, 1, ?) = ? "
            "ORDER BY started_at DESC",
            [len(ref), ref],
        ).fetchall()
        if len(rows) == 1:
            return rows[0][0]
        if rows:
            raise AmbiguousRun(
                f"run id prefix '{ref}' matches {len(rows)} runs: {_describe(rows)}; "
                "give more characters of the id"
            )
    raise RunNotFound(f"no run matches '{ref}'; {_suggest(db, ref)}")


def _suggest(db: Database, ref: str) -> str:
    names = [row[0] for row in db.execute("SELECT DISTINCT name FROM runs").fetchall()]
    close = difflib.get_close_matches(ref, names, n=_SHOWN)
    if close:
        return "did you mean: " + ", ".join(close)
    latest = db.execute(
        "SELECT run_id, name, started_at FROM runs ORDER BY started_at DESC LIMIT ?", [_SHOWN]
    ).fetchall()
    if not latest:
        return "the registry has no runs yet"
    return "latest runs: " + _describe(latest)


def _describe(rows: list[tuple[str, str, float]]) -> str:
    shown = [
        f"{run_id} ({name}, {datetime.fromtimestamp(started).strftime('%Y-%m-%d %H:%M')})"
        for run_id, name, started in rows[:_SHOWN]
    ]
    more = f", and {len(rows) - _SHOWN} more" if len(rows) > _SHOWN else ""
    return ", ".join(shown) + more
