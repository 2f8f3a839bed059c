"""Run references and run names.

A reference is a full run id; else a run name (its latest run) or a unique id prefix, and
never both: a reference that names one run and is an id prefix of another is refused, with
both listed. New names cannot be read as id prefixes (not only hex digits), and hold only
printable characters (no newline, tab, ESC or other control character), so ``esper show NAME``
finds what ``esper runs`` shows.
"""

from __future__ import annotations

import difflib
import re
from datetime import datetime

from sqlite_utils import Database

from esper.registry.errors import AmbiguousRun, BadRunName, RunNotFound

_HEX = re.compile(r"[0-9a-f]+")
_SHOWN = 8  # candidates listed in an error message at most


def check_name(name: str | None) -> None:
    """Raises BadRunName unless ``name`` can name a new run (None: the default name).

    A name has a character other than 0-9 a-f (it cannot be taken for a run id prefix) and
    only printable characters.
    """
    if name is None:
        return
    if not name.strip():
        raise BadRunName("a run name cannot be empty")
    if _HEX.fullmatch(name):
        raise BadRunName(f"run name {name!r} could be read as a run id prefix: use a character "
                         f"other than 0-9 and a-f, e.g. run-{name}")
    if not name.isprintable():
        shown = next(c for c in name if not c.isprintable())
        raise BadRunName(f"run name {name!r} has a character that is not printable ({shown!r}: "
                         "a control character, invisible or a space other than ' ')")


def resolve_ref(db: Database, ref: str) -> str:
    """The run id ``ref`` refers to: an exact id; else the latest run named ``ref`` or the one
    run whose id starts with ``ref``, whichever matches (see the module docstring).

    Raises:
        AmbiguousRun: ``ref`` is a prefix of several run ids, or names a run and is a prefix
            of another's id (the message lists them).
        RunNotFound: nothing matches (the message lists similar names, or the latest runs).
    """
    exact = db.execute("SELECT run_id FROM runs WHERE run_id = ?", [ref]).fetchone()
    if exact:
        return exact[0]
    named = db.execute(
        "SELECT run_id, name, started_at FROM runs WHERE name = ? "
        "ORDER BY started_at DESC, rowid DESC LIMIT 1", [ref]
    ).fetchall()
    prefixed = db.execute(
        "SELECT run_id, name, started_at FROM runs WHERE substr(run_id, 1, ?) = ? "
        "ORDER BY started_at DESC", [len(ref), ref]
    ).fetchall() if _HEX.fullmatch(ref) else []
    others = [row for row in prefixed if not named or row[0] != named[0][0]]
    if named and others:
        raise AmbiguousRun(
            f"{ref!r} is the name of run {_describe(named)} and a prefix of the id of "
            f"{_describe(others)}; give the full id of the run you mean")
    if named:
        return named[0][0]
    if len(prefixed) == 1:
        return prefixed[0][0]
    if prefixed:
        raise AmbiguousRun(
            f"run id prefix {ref!r} matches {len(prefixed)} runs: {_describe(prefixed)}; "
            "give more characters of the id"
        )
    raise RunNotFound(f"no run matches {ref!r}; {_suggest(db, ref)}")


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
