"""The ``runs`` table: a run's row from creation to its end status, and queries over runs.

CRASHED is never stored: a RUNNING row is shown as CRASHED when its process is gone. A reader
in the run's pid space (same boot and pid namespace, esper.registry.process) asks the kernel
whether the process of that pid and start time lives: a live one is RUNNING however old its
heartbeat (paused by SIGSTOP), a reused pid is not it. Elsewhere (another host or container)
a heartbeat older than ``stale_after`` seconds means CRASHED. Rows written before the pid's
start time was recorded, on this host: CRASHED when the pid is dead or the heartbeat stale.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from esper.leyline.events import SinkStats
from esper.registry import process
from esper.registry.errors import BadTag
from esper.registry.provenance import Provenance
from esper.registry.records import NewRun, RunKind, RunRecord, RunStatus

ENDED = (RunStatus.FINISHED, RunStatus.FAILED, RunStatus.KILLED)

# Tags a user sets after the fact (``esper tag``) go to MLflow too: keys as MLflow accepts them
# (mlflow.utils.validation), not esper's or MLflow's own.
RESERVED_TAG_PREFIXES = ("esper.", "mlflow.")
_TAG_KEY = re.compile(r"[/\w.\- :]+")
MAX_TAG_KEY = 250
MAX_TAG_VALUE = 8000


@dataclass(frozen=True)
class RunFilter:
    """Which runs to list; every field that is not None must match."""

    status: RunStatus | None = None
    experiment: str | None = None
    name: str | None = None
    tag: str | None = None  # "key" (the tag is set) or "key=value"
    group_id: str | None = None  # members of a replicate group
    since: datetime | None = None  # started at or after
    until: datetime | None = None  # started before
    limit: int | None = None  # newest first
    kind: RunKind | None = None  # what made the run (RunRecord.kind)


@dataclass(frozen=True)
class Liveness:
    """How to tell whether a RUNNING row's process still lives."""

    host: str  # this machine's name
    pid_space: str | None  # this process's pid space: pids recorded in it are checked
    now: float  # unix seconds
    stale_after: float  # seconds without a heartbeat after which a run elsewhere has crashed

    def status(self, row: dict[str, Any]) -> RunStatus:
        """The status of a ``runs`` row as of ``now`` (see the module docstring)."""
        status = RunStatus(row["status"])
        if status is not RunStatus.RUNNING:
            return status
        # .get: a registry opened without its upgrade to m003 has no such columns
        space, started = row.get("pid_space"), row.get("pid_start")
        if space is not None and space == self.pid_space and started is not None:
            alive = process.is_alive(row["pid"], started)
        else:
            heartbeat_at = row["heartbeat_at"]
            alive = heartbeat_at is not None and self.now - heartbeat_at <= self.stale_after
            if space is None and row["host"] == self.host:
                alive = alive and _pid_alive(row["pid"])
        return status if alive else RunStatus.CRASHED


def new_run_id() -> str:
    """12 hex characters (48 random bits)."""
    return secrets.token_hex(6)


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_of_file(path: str | None) -> str | None:
    if path is None or not Path(path).is_file():
        return None
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def insert_run(db: Database, new: NewRun, origin: Provenance, now: float) -> str:
    """Insert a RUNNING row for ``new``; call inside a write transaction. Returns the run id."""
    run_id = new_run_id()
    name = new.name
    if name is None:  # <experiment>-<n>, n = runs of the experiment so far + 1, or the next free
        count = db.execute(
            "SELECT count(*) FROM runs WHERE experiment = ?", [new.experiment]
        ).fetchone()[0]
        prefix = f"{new.experiment}-"
        taken = {row[0] for row in db.execute(
            "SELECT name FROM runs WHERE substr(name, 1, ?) = ?", [len(prefix), prefix])}
        number = count + 1
        while f"{prefix}{number}" in taken:  # a run was named so by hand (--name)
            number += 1
        name = f"{prefix}{number}"
    config = canonical_json(new.config)
    db["runs"].insert(
        {
            "run_id": run_id,
            "name": name,
            "experiment": new.experiment,
            "spec_path": new.spec_path,
            "spec_sha256": sha256_of_file(new.spec_path),
            "config": config,
            "config_sha256": hashlib.sha256(config.encode()).hexdigest(),
            "status": RunStatus.RUNNING.value,
            "created_at": now,
            "started_at": now,
            "heartbeat_at": now,
            "pid": origin.pid,
            "pid_space": origin.pid_space,
            "pid_start": origin.pid_start,
            "host": origin.host,
            "user": origin.user,
            "git_commit": origin.git_commit,
            "git_dirty": None if origin.git_dirty is None else int(origin.git_dirty),
            "esper_version": origin.esper_version,
            "torch_version": origin.torch_version,
            "python_version": origin.python_version,
            "seed": new.seed,
            "device": new.device,
            "group_id": new.group_id,
            "parent_run_id": new.parent_run_id,
            "tags": canonical_json(dict(new.tags)),
            "notes": new.notes,
            "event_count": 0,
            "sinks": "[]",
        }
    )
    return run_id


def finish_run(
    db: Database,
    run_id: str,
    status: RunStatus,
    *,
    exit_reason: str | None,
    traceback: str | None,
    sinks: Sequence[SinkStats],
    now: float,
) -> None:
    """Set the end status of a run; call inside a write transaction."""
    db.execute(
        "UPDATE runs SET status = ?, exit_reason = ?, traceback = ?, ended_at = ?, "
        "heartbeat_at = ?, sinks = ? WHERE run_id = ?",
        [status.value, exit_reason, traceback, now, now, _sinks_json(sinks), run_id],
    )


def reopen_run(db: Database, run_id: str, origin: Provenance, liveness: Liveness) -> bool:
    """Make the process of `origin` the owner of run `run_id`, RUNNING again, unless its owner
    lives; call inside a write transaction. Returns False (and changes nothing) if it does."""
    row = next(db.query("SELECT * FROM runs WHERE run_id = ?", [run_id]))
    if liveness.status(row) is RunStatus.RUNNING:
        return False
    db.execute(
        "UPDATE runs SET status = ?, pid = ?, host = ?, pid_space = ?, pid_start = ?, "
        "heartbeat_at = ?, ended_at = NULL, exit_reason = NULL, traceback = NULL "
        "WHERE run_id = ?",
        [RunStatus.RUNNING.value, origin.pid, origin.host, origin.pid_space, origin.pid_start,
         liveness.now, run_id],
    )
    return True


def touch_heartbeat(db: Database, run_id: str, now: float) -> None:
    db.execute(
        "UPDATE runs SET heartbeat_at = ? WHERE run_id = ? AND status = ?",
        [now, run_id, RunStatus.RUNNING.value],
    )


def set_mlflow_ids(db: Database, run_id: str, mlflow_run_id: str, experiment_id: str) -> None:
    db.execute(
        "UPDATE runs SET mlflow_run_id = ?, mlflow_experiment_id = ? WHERE run_id = ?",
        [mlflow_run_id, experiment_id, run_id],
    )


def select_runs(db: Database, where: RunFilter, liveness: Liveness) -> list[RunRecord]:
    """Runs matching ``where``, newest first."""
    clauses: list[str] = []
    params: list[Any] = []
    # statuses and kinds derived on read: filtered (and limited) below
    derived = where.status in (RunStatus.RUNNING, RunStatus.CRASHED) or where.kind is not None
    if where.status is not None:
        clauses.append("status = ?")
        params.append(RunStatus.RUNNING.value if where.status is RunStatus.CRASHED
                      else where.status.value)
    for column, value in (("experiment", where.experiment), ("name", where.name),
                          ("group_id", where.group_id)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if where.tag is not None:
        key, _, value = where.tag.partition("=")
        clauses.append(
            "EXISTS (SELECT 1 FROM json_each(runs.tags) AS t "
            "WHERE t.key = ? AND (? OR t.value = ?))"
        )
        params += [key, "=" not in where.tag, value]
    if where.since is not None:
        clauses.append("started_at >= ?")
        params.append(where.since.timestamp())
    if where.until is not None:
        clauses.append("started_at < ?")
        params.append(where.until.timestamp())
    sql = "SELECT * FROM runs"
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    sql += " ORDER BY started_at DESC, rowid DESC"
    if where.limit is not None and not derived:
        sql += f" LIMIT {int(where.limit)}"
    records = [to_record(row, liveness) for row in db.query(sql, params)]
    if derived:
        records = [r for r in records if where.status in (None, r.status)
                   and where.kind in (None, r.kind)][: where.limit]
    return records


def child_ids(db: Database, run_ids: Sequence[str]) -> list[str]:
    """The ids of the runs whose parent is one of ``run_ids`` (a sweep's trials), oldest first."""
    marks = ", ".join("?" * len(run_ids))
    return [row[0] for row in db.execute(
        f"SELECT run_id FROM runs WHERE parent_run_id IN ({marks}) ORDER BY started_at, rowid",
        list(run_ids))]


def check_tags(tags: Mapping[str, str], removed: Sequence[str]) -> None:
    """Refuse tags a user cannot set or remove: esper's and MLflow's own (``esper.*``,
    ``mlflow.*``), keys MLflow would refuse, values over its length limit, a key both set and
    removed.

    Raises:
        BadTag: naming the first such tag.
    """
    for key in (*tags, *removed):
        if not _TAG_KEY.fullmatch(key) or len(key) > MAX_TAG_KEY:
            raise BadTag(f"tag key {key!r}: expected up to {MAX_TAG_KEY} letters, digits, "
                         "'_', '-', '.', ' ', ':' or '/' (the keys MLflow accepts)")
        if key.startswith(RESERVED_TAG_PREFIXES):
            raise BadTag(f"tag key {key!r} is reserved: esper and MLflow set the "
                         f"{' and '.join(p + '*' for p in RESERVED_TAG_PREFIXES)} tags themselves")
    for key, value in tags.items():
        if len(value) > MAX_TAG_VALUE:
            raise BadTag(f"tag {key!r}: the value has {len(value):,} characters, over "
                         f"MLflow's {MAX_TAG_VALUE:,}")
    both = sorted(set(tags) & set(removed))
    if both:
        raise BadTag(f"tag key {both[0]!r} is both set and removed")


def set_tags(db: Database, run_id: str, tags: Mapping[str, str], removed: Sequence[str]) -> None:
    """Set ``tags`` and remove the keys ``removed`` from a run's tags; call inside a write
    transaction."""
    row = db.execute("SELECT tags FROM runs WHERE run_id = ?", [run_id]).fetchone()
    updated = {k: v for k, v in json.loads(row[0]).items() if k not in removed}
    updated.update(tags)
    db.execute("UPDATE runs SET tags = ? WHERE run_id = ?", [canonical_json(updated), run_id])


def set_notes(db: Database, run_id: str, notes: str) -> None:
    db.execute("UPDATE runs SET notes = ? WHERE run_id = ?", [notes, run_id])


def get_run(db: Database, run_id: str, liveness: Liveness) -> RunRecord | None:
    rows = list(db.query("SELECT * FROM runs WHERE run_id = ?", [run_id]))
    return to_record(rows[0], liveness) if rows else None


def to_record(row: dict[str, Any], liveness: Liveness) -> RunRecord:
    return RunRecord(
        run_id=row["run_id"],
        name=row["name"],
        experiment=row["experiment"],
        status=liveness.status(row),
        config=json.loads(row["config"]),
        config_sha256=row["config_sha256"],
        spec_path=row["spec_path"],
        spec_sha256=row["spec_sha256"],
        exit_reason=row["exit_reason"],
        traceback=row["traceback"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        heartbeat_at=row["heartbeat_at"],
        pid=row["pid"],
        host=row["host"],
        user=row["user"],
        git_commit=row["git_commit"],
        git_dirty=None if row["git_dirty"] is None else bool(row["git_dirty"]),
        esper_version=row["esper_version"],
        torch_version=row["torch_version"],
        python_version=row["python_version"],
        seed=row["seed"],
        device=row["device"],
        group_id=row["group_id"],
        parent_run_id=row["parent_run_id"],
        mlflow_run_id=row["mlflow_run_id"],
        mlflow_experiment_id=row["mlflow_experiment_id"],
        tags=json.loads(row["tags"]),
        notes=row["notes"],
        event_count=row["event_count"],
        sinks=tuple(SinkStats(**s) for s in json.loads(row["sinks"])),
    )


def _sinks_json(sinks: Sequence[SinkStats]) -> str:
    return json.dumps([asdict(s) for s in sinks])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True
