"""The run registry: one object over ``runs.db`` for writing runs and events and reading them.

Example::

    registry = Registry.open()                      # ./runs.db, or $ESPER_REGISTRY
    run = registry.create_run(NewRun(experiment="quickstart", config=config, seed=0))
    registry.write_events(events)                   # one transaction per batch
    registry.finish_run(run.run_id, RunStatus.FINISHED)
    for event in registry.events(registry.resolve("quickstart-1").run_id):
        ...

The object may be shared by threads (the telemetry sink, the heartbeat, the run loop): one
SQLite connection, used under a lock. Runs are usually recorded through
``esper.nissa.recording``, which adds the hub, the heartbeat and the end status.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import closing
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlite_utils import Database

from esper.leyline.events import SinkStats, TelemetryEvent, TelemetryEventType
from esper.registry import connection, deletion, process, provenance, queries, refs, runs, storage
from esper.registry import events as event_rows
from esper.registry.checkpoint import Checkpointer
from esper.registry.errors import RegistryFull, RunInUse, RunNotFound
from esper.registry.events import EventRow
from esper.registry.metrics import summarise_metrics
from esper.registry.queries import SeriesStats
from esper.registry.records import NewRun, RunKind, RunRecord, RunStatus, RunSummary

T = TypeVar("T")

# Seconds without a heartbeat before a RUNNING run shows as CRASHED, where its process cannot
# be checked (another host or container); see esper.registry.runs.
DEFAULT_STALE_AFTER = 30.0


class Registry:
    """Runs and their events in one SQLite file. Open it with ``Registry.open``."""

    def __init__(self, db: Database, path: Path, stale_after: float, *,
                 writable: bool = True) -> None:
        self.path = path
        self.stale_after = stale_after
        self._lock = threading.RLock()
        self._host = socket.gethostname()
        self._pid_space = process.pid_space()
        self._writable = writable  # False: opened read-only; the first write reopens it
        self._attach(db)

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        create: bool = True,
        stale_after: float = DEFAULT_STALE_AFTER,
    ) -> Registry:
        """Open (and if needed create or upgrade) a registry.

        :param path: the file; None: ``$ESPER_REGISTRY``, else ``./runs.db``
        :param create: create the file if it does not exist; False (read-only commands): the
            file is opened read-only, so a read-only copy can be read, and reopened
            read-write by the first write
        :param stale_after: seconds without a heartbeat after which a RUNNING run is CRASHED
        Raises:
            RegistryError: missing (with ``create=False``), not SQLite, damaged, foreign, or
                written by a newer esper; or refused by the storage (read-only, no permission,
                full, missing directory).
        """
        resolved = connection.registry_path(path)
        if create:
            return cls(connection.connect(resolved, create=True), resolved, stale_after)
        return cls(connection.connect_read_only(resolved), resolved, stale_after, writable=False)

    def close(self) -> None:
        with self._lock:
            self._checkpointer.close()
            self._events.close()
            self._db.close()

    def save_copy(self, target: Path) -> None:
        """Copy the registry, as this connection sees it, into the new file ``target``: what
        was written to a registry file deleted while open is kept that way.

        Raises:
            sqlite3.Error, OSError: ``target`` cannot be written.
        """
        with self._lock, closing(sqlite3.connect(target)) as copy:
            self._db.conn.backup(copy)

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- writing -----------------------------------------------------------------------------

    def create_run(self, new: NewRun) -> RunRecord:
        """Insert a RUNNING run with its provenance (host, pid, git, versions) and return it.

        Raises:
            BadRunName: ``new.name`` breaks the rule of ``refs.check_name``.
        """
        refs.check_name(new.name)
        origin = provenance.collect()
        now = time.time()
        with self._lock:
            run_id = self._write(lambda: runs.insert_run(self._db, new, origin, now))
        storage.keep_reserve(self.path)  # room to record the run's end should the disk fill
        return self.run(run_id)

    def write_events(self, events: Sequence[TelemetryEvent]) -> None:
        """Insert events in one ``BEGIN IMMEDIATE`` transaction (retried while locked)."""
        if not events:
            return
        self._make_writable()  # before prepare: its body writes through the read-write handle
        body = self._events.prepare(events)  # encodes the first chunk before taking the lock
        with self._lock:
            self._write(body)

    def reopen_run(self, run_id: str) -> RunRecord:
        """Take over an ended or crashed run: RUNNING again, owned by this process (its pid,
        host and heartbeat), end status cleared; checked and written in one transaction, so
        of two processes reopening a run at once one wins.

        Raises:
            RunInUse: the run's process still lives (see ``runs.Liveness``).
        """
        origin = provenance.collect()
        with self._lock:
            reopened = self._write(
                lambda: runs.reopen_run(self._db, run_id, origin, self._liveness()))
        record = self.run(run_id)
        if not reopened:
            raise RunInUse(f"run {record.name} ({run_id}) is still running (pid {record.pid} "
                           f"on {record.host})", record)
        return record

    def heartbeat(self, run_id: str) -> None:
        """Stamp ``heartbeat_at`` = now on a RUNNING run."""
        now = time.time()
        with self._lock:
            self._write(lambda: runs.touch_heartbeat(self._db, run_id, now))

    def finish_run(
        self,
        run_id: str,
        status: RunStatus,
        *,
        exit_reason: str | None = None,
        traceback: str | None = None,
        sinks: Sequence[SinkStats] = (),
    ) -> RunRecord:
        """Record how a run ended (FINISHED, FAILED or KILLED) and what each sink dropped. On
        a full disk the space reserve (``storage.keep_reserve``) is given up for this write.

        Raises:
            RegistryError: the registry cannot be written (see ``storage.storage_error``).
        """
        if status not in runs.ENDED:
            raise ValueError(f"a run ends FINISHED, FAILED or KILLED, not {status.value}")
        now = time.time()

        def finish() -> None:
            runs.finish_run(self._db, run_id, status, exit_reason=exit_reason,
                            traceback=traceback, sinks=sinks, now=now)
        with self._lock:
            try:
                self._write(finish)
            except RegistryFull:
                if not storage.release_reserve(self.path):
                    raise
                self._write(finish)
        return self.run(run_id)

    def set_mlflow_ids(self, run_id: str, mlflow_run_id: str, mlflow_experiment_id: str) -> None:
        """Link a run to its MLflow run."""
        with self._lock:
            self._write(
                lambda: runs.set_mlflow_ids(self._db, run_id, mlflow_run_id, mlflow_experiment_id)
            )

    def delete_runs(self, run_ids: Sequence[str]) -> None:
        """Delete every row of ``run_ids`` (runs, events, metrics, wiring, artifacts) in one
        transaction; their files are the caller's (``deletion.remove``).

        Raises:
            RunInUse: a run is RUNNING (its process lives); nothing is deleted.
        """
        with self._lock:
            running = self._write(
                lambda: deletion.delete_rows(self._db, run_ids, self._liveness()))
        if running:
            raise deletion.running_error(running[0])

    def set_tags(self, run_id: str, tags: Mapping[str, str], removed: Sequence[str] = ()) -> None:
        """Set ``tags`` on run ``run_id`` and remove the keys ``removed``.

        Raises:
            BadTag: a key is reserved or invalid, or a value too long (``runs.check_tags``).
        """
        runs.check_tags(tags, removed)
        with self._lock:
            self._write(lambda: runs.set_tags(self._db, run_id, tags, removed))

    def set_notes(self, run_id: str, notes: str) -> None:
        """Replace the notes (the description) of run ``run_id``."""
        with self._lock:
            self._write(lambda: runs.set_notes(self._db, run_id, notes))

    def record_artifact(self, run_id: str, name: str, path: str | os.PathLike[str]) -> None:
        """Record that run `run_id` wrote the file `path` as its artifact `name`."""
        row = {"run_id": run_id, "name": name, "path": str(path), "created_at": time.time()}
        with self._lock:
            self._write(lambda: self._db["artifacts"].upsert(row, pk=("run_id", "name")))

    def artifacts(self, run_id: str) -> dict[str, str]:
        """Artifact name -> file path of run `run_id`."""
        with self._lock:
            rows = self._db.execute(
                "select name, path from artifacts where run_id = ? order by name", [run_id]
            ).fetchall()
        return dict(rows)

    def record_wiring(self, run_id: str, rows: Sequence[dict[str, object]]) -> None:
        """Store (replace) the wiring outcomes of run `run_id` (rows of `wiring.wiring_rows`)."""
        def write() -> None:
            self._db.execute("DELETE FROM wiring WHERE run_id = ?", [run_id])
            self._db["wiring"].insert_all(rows)
        with self._lock:
            self._write(write)

    def append_metrics(self, run_id: str, points: Iterable[tuple[str, int, float, float]]) -> None:
        """Add points to the scalar series of run `run_id`, in one transaction. `points` are
        ``(key, step, value, ts)`` tuples (``esper.nissa.metric_series.MetricPoint``)."""
        rows = [(run_id, key, step, value, ts) for key, step, value, ts in points]

        def write() -> None:
            self._db.conn.executemany(
                "INSERT INTO metrics (run_id, key, step, value, ts) VALUES (?, ?, ?, ?, ?)", rows)
        with self._lock:
            self._write(write)

    def query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """Rows of a read-only SQL query over ``runs.db`` (for analyses such as
        ``esper.compare``; writes go through the methods above)."""
        with self._lock:
            return self._db.execute(sql, list(params)).fetchall()

    def child_ids(self, run_ids: Sequence[str]) -> list[str]:
        """Ids of the runs whose parent is one of ``run_ids`` (a sweep's trials)."""
        with self._lock:
            return runs.child_ids(self._db, run_ids)

    def row_counts(self, run_ids: Sequence[str]) -> dict[str, int]:
        """Rows of ``run_ids`` in each table keyed by run id."""
        with self._lock:
            return deletion.row_counts(self._db, run_ids)

    def run_ids(self) -> set[str]:
        """The id of every run."""
        with self._lock:
            return {row[0] for row in self._db.execute("SELECT run_id FROM runs")}

    def wiring(self, run_id: str) -> list[dict[str, object]]:
        """The stored wiring rows of run `run_id`, by TELE id and field."""
        with self._lock:
            return list(self._db["wiring"].rows_where(
                "run_id = ?", [run_id], order_by="tele_id, field"))

    # --- reading -----------------------------------------------------------------------------

    def runs(
        self,
        *,
        status: RunStatus | None = None,
        experiment: str | None = None,
        name: str | None = None,
        tag: str | None = None,
        group_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
        kind: RunKind | None = None,
    ) -> list[RunRecord]:
        """Runs matching every filter given, newest first.

        :param tag: ``"key"`` (the tag is set) or ``"key=value"``
        :param since: started at or after; :param until: started before
        :param kind: what made the run (``RunRecord.kind``)
        """
        where = runs.RunFilter(status, experiment, name, tag, group_id, since, until, limit, kind)
        with self._lock:
            return runs.select_runs(self._db, where, self._liveness())

    def run(self, run_id: str) -> RunRecord:
        """The run with this exact id.

        Raises:
            RunNotFound: no such run.
        """
        with self._lock:
            record = runs.get_run(self._db, run_id, self._liveness())
        if record is None:
            raise RunNotFound(f"no run with id '{run_id}' in {self.path}")
        return record

    def resolve(self, ref: str) -> RunRecord:
        """The run ``ref`` names: a full id, else a name (the latest such run) or a unique id
        prefix, never both (see ``esper.registry.refs``).

        Raises:
            RunNotFound, AmbiguousRun: the message lists the candidates.
        """
        with self._lock:
            run_id = refs.resolve_ref(self._db, ref)
        return self.run(run_id)

    def events(
        self,
        run_id: str,
        *,
        types: Iterable[TelemetryEventType] | None = None,
        env_id: int | None = None,
        batch: int | None = None,
        limit: int | None = None,
    ) -> Iterator[TelemetryEvent]:
        """A run's events in seq order, read page by page (memory does not grow with the run)."""
        wanted = None if types is None else tuple(types)
        after, remaining = -1, limit
        while remaining is None or remaining > 0:
            with self._lock:
                page = event_rows.select_events(
                    self._db, run_id, types=wanted, env_id=env_id, batch=batch, after_seq=after,
                    page=2_000 if remaining is None else min(remaining, 2_000),
                )
            if not page:
                return
            yield from page
            after = page[-1].seq
            if remaining is not None:
                remaining -= len(page)

    def event_counts(self, run_id: str) -> list[tuple[str, int]]:
        """(event type, count) for a run, most frequent first."""
        with self._lock:
            return event_rows.count_by_type(self._db, run_id)

    def event_rows(self, run_id: str, *, after_seq: int = -1,
                   page: int = 2_000) -> Iterator[EventRow]:
        """A run's events with seq > `after_seq` in seq order, payloads undecoded (JSON text),
        read `page` rows at a time (memory does not grow with the run)."""
        while True:
            with self._lock:
                rows = event_rows.select_rows(self._db, run_id, after_seq=after_seq, page=page)
            yield from rows
            if len(rows) < page:
                return
            after_seq = rows[-1].seq

    # --- named queries for the analyses (esper.registry.queries) -----------------------------

    def field_counts(self, run_id: str, types: Sequence[TelemetryEventType],
                     field: str) -> Counter[tuple[str, Any]]:
        """(event type, value of payload `field`) -> number of the run's events of `types`."""
        with self._lock:
            return queries.field_counts(self._db, run_id, types, field)

    def gate_failure_counts(self, run_id: str) -> list[tuple[str, int]]:
        """(check, failed gate evaluations naming it) of a run, by check (gate_events probe)."""
        with self._lock:
            return queries.gate_failure_counts(self._db, run_id)

    def last_metric(self, run_id: str, key: str) -> float | None:
        """The last value of series `key`; None: never measured; NaN: a measured NaN."""
        with self._lock:
            return queries.last_metric(self._db, run_id, key)

    def series_stats(self, run_id: str, key: str) -> SeriesStats:
        """Points, non-NaN points, max and mean of series `key` of run `run_id`."""
        with self._lock:
            return queries.series_stats(self._db, run_id, key)

    def mean_by_step(self, run_id: str, keys: str,
                     not_keys: str | None = None) -> list[tuple[int, float | None]]:
        """(step, mean of the series matching the GLOB `keys`, not `not_keys`), by step."""
        with self._lock:
            return queries.mean_by_step(self._db, run_id, keys, not_keys)

    def group_ids(self, prefix: str = "") -> list[str]:
        """The replicate group ids starting with `prefix`, sorted."""
        with self._lock:
            return queries.group_ids(self._db, prefix)

    def latest_group_ids(self, limit: int = 8) -> list[str]:
        """The `limit` replicate groups with the latest runs, latest first."""
        with self._lock:
            return queries.latest_group_ids(self._db, limit)

    def summary(self, ref: str) -> RunSummary:
        """What ``esper show`` prints: the run, its event counts by type, its metrics summary.

        Raises:
            RunNotFound, AmbiguousRun: ``ref`` does not name exactly one run.
        """
        run = self.resolve(ref)
        with self._lock:
            counts = event_rows.count_by_type(self._db, run.run_id)
            metrics = summarise_metrics(self._db, run.run_id)
        return RunSummary(run, tuple(counts), tuple(metrics))

    # -----------------------------------------------------------------------------------------

    def _write(self, body: Callable[[], T]) -> T:
        """Run ``body`` in a write transaction; the WAL pages it adds are checkpointed later,
        off this thread (the connection does not checkpoint in its own commits).

        Raises:
            RegistryError: the storage failed (full, read-only, ...: ``storage.storage_error``);
                RegistryGone: the file at ``path`` is no longer the one this connection opened
                (deleted or replaced): nothing is written, so that its ``-wal`` file, which
                SQLite names after the path, is not fed pages of the old file.
        """
        self._make_writable()
        self._check_identity()
        try:
            result = connection.write_transaction(self._db, self.path, body)
        except sqlite3.Error as exc:
            if not storage.is_storage_fault(exc):
                raise
            raise storage.storage_error(self.path, exc) from exc
        self._checkpointer.request()
        return result

    def _attach(self, db: Database) -> None:
        """Use the connection ``db`` (and remember which file it opened)."""
        self._db = db
        self._identity = _file_identity(self.path)
        self._events = event_rows.EventWriter(db)
        self._checkpointer = Checkpointer(self.path, db.conn)

    def _make_writable(self) -> None:
        """Reopen a registry opened read-only read-write, before its first write."""
        with self._lock:
            if not self._writable:
                db = connection.connect(self.path, create=False)
                self.close()
                self._attach(db)
                self._writable = True

    def _check_identity(self) -> None:
        identity = _file_identity(self.path)
        if identity is None or identity != self._identity:
            raise storage.gone(self.path, "deleted" if identity is None else
                               "replaced by another file")

    def _liveness(self) -> runs.Liveness:
        return runs.Liveness(self._host, self._pid_space, time.time(), self.stale_after)


def _file_identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of the file at ``path``; None when there is none."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino
