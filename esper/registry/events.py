"""The ``events`` table: writing batches of telemetry events and reading them back in seq order.

Writing is on the hot path (>= 100,000 events/s, docs/architecture.md §8). Measured choices:
- rows go in as multi-row ``INSERT ... VALUES (...), (...), ...`` statements of ``_CHUNK``
  rows. ``executemany`` steps SQLite once per row and the sqlite3 module releases the GIL
  around every step; with a busy training thread each re-acquisition can wait for the 5 ms
  switch interval (the "convoy effect"), which cut executemany to a few hundred rows/s in a
  test where one multi-row statement per 1,000 rows kept ~70,000 rows/s.
- encoding (Python, holds the GIL) and inserting (SQLite, releases it) overlap: the caller's
  thread encodes chunk k+1 while a worker thread inserts chunk k, on two cores.
- statements have a few fixed sizes (``_SIZES``): a chunk of another size is inserted as a
  sum of them. Preparing a fresh 2,000-row statement costs about as much as running it
  (2 us per row), and paced batches rarely have the same size twice; the fixed sizes are
  prepared once and stay in the connection's statement cache, which would otherwise fill
  with up to 128 statements of ~1 MB each.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from operator import attrgetter
from typing import Any, NamedTuple

from sqlite_utils import Database

from esper.leyline.codec import decode_payload, encode_payloads
from esper.leyline.events import Severity, TelemetryEvent, TelemetryEventType
from esper.registry.errors import RegistryError

_COLUMNS = (
    "run_id", "seq", "ts", "event_type", "severity", "batch", "env_id", "epoch", "seed_id",
    "slot_id", "message", "data",
)
_CHUNK = 2_500  # rows per INSERT: 30,000 parameters, below SQLite's limit of 32,766
_SIZES = (_CHUNK, *(2**k for k in range(11, -1, -1)))  # rows of an INSERT: 2,500, 2,048, ..., 1
_ROW = "(" + ",".join("?" * len(_COLUMNS)) + ")"
_INSERT = f"INSERT INTO events ({', '.join(_COLUMNS)}) VALUES "
_TYPE_NAMES = {t: t.value for t in TelemetryEventType}
_RUN_ID = attrgetter("run_id")


def _insert_statement(rows: int) -> str:
    return _INSERT + ",".join([_ROW] * rows)


_STATEMENTS = {rows: _insert_statement(rows) for rows in _SIZES}


def _insert_rows(db: Database, params: list[Any]) -> None:
    """Insert the rows of ``params`` (at most ``_CHUNK``) with statements of the fixed sizes."""
    width, start, left = len(_COLUMNS), 0, len(params) // len(_COLUMNS)
    for rows in _SIZES:
        while left >= rows:
            stop = start + rows * width
            db.conn.execute(_STATEMENTS[rows], params if stop - start == len(params)
                            else params[start:stop])
            start, left = stop, left - rows


def encode_rows(events: Sequence[TelemetryEvent]) -> list[Any]:
    """Flatten events into insert parameters, row after row (payloads as JSON text)."""
    params: list[Any] = []
    extend = params.extend
    # ``_value_``, a plain attribute: ``.value`` and a dict keyed by the enum (Enum.__hash__)
    # both run Python code, twice per event.
    for e, data in zip(events, encode_payloads([e.data for e in events])):
        extend(
            (
                e.run_id, e.seq, e.ts, e.event_type._value_, e.severity._value_, e.batch,
                e.env_id, e.epoch, e.seed_id, e.slot_id, e.message, data,
            )
        )
    return params


class EventWriter:
    """Inserts batches of events; owns the worker thread that runs the INSERT statements."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="esper-registry-insert")

    def prepare(self, events: Sequence[TelemetryEvent]) -> Callable[[], None]:
        """The body of the write transaction for ``events``; encodes the first chunk now.

        The body can run again (a retried transaction): chunks already encoded are reused.
        """
        chunks = [events[i : i + _CHUNK] for i in range(0, len(events), _CHUNK)]
        encoded = [encode_rows(chunks[0])] if chunks else []
        per_run = Counter(map(_RUN_ID, events))

        def body() -> None:
            inserting: Future[Any] | None = None
            try:
                for i, chunk in enumerate(chunks):
                    if i == len(encoded):
                        encoded.append(encode_rows(chunk))  # while chunk i-1 is inserted
                    if inserting is not None:
                        inserting.result()
                    inserting = self._worker.submit(_insert_rows, self._db, encoded[i])
                if inserting is not None:
                    inserting.result()
            finally:
                if inserting is not None:
                    wait([inserting])  # never roll back while the worker still uses the connection
            for run_id, count in per_run.items():
                self._db.conn.execute(
                    "UPDATE runs SET event_count = event_count + ? WHERE run_id = ?",
                    [count, run_id],
                )

        return body

    def close(self) -> None:
        self._worker.shutdown()


def select_events(
    db: Database,
    run_id: str,
    *,
    types: Iterable[TelemetryEventType] | None,
    env_id: int | None,
    batch: int | None,
    after_seq: int,
    page: int,
) -> list[TelemetryEvent]:
    """One page of a run's events with seq > ``after_seq``, in seq order."""
    clauses = ["run_id = ?", "seq > ?"]
    params: list[Any] = [run_id, after_seq]
    if types is not None:
        names = [_TYPE_NAMES[t] for t in types]
        clauses.append(f"event_type IN ({','.join('?' * len(names))})")
        params += names
    for column, value in (("env_id", env_id), ("batch", batch)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    sql = (
        f"SELECT {', '.join(_COLUMNS)} FROM events WHERE {' AND '.join(clauses)} "
        f"ORDER BY seq LIMIT {int(page)}"
    )
    return [_to_event(row) for row in db.execute(sql, params).fetchall()]


class EventRow(NamedTuple):
    """One stored event as read, payload undecoded: ``data`` is its JSON text (NaN and the
    infinities as the codec writes them, or as older versions did)."""

    seq: int
    ts: float
    event_type: str
    severity: str
    batch: int | None
    env_id: int | None
    epoch: int | None
    seed_id: str | None
    slot_id: str | None
    message: str
    data: str


def select_rows(db: Database, run_id: str, *, after_seq: int, page: int) -> list[EventRow]:
    """One page of a run's events with seq > ``after_seq``, in seq order, undecoded."""
    rows = db.execute(
        f"SELECT {', '.join(EventRow._fields)} FROM events WHERE run_id = ? AND seq > ? "
        f"ORDER BY seq LIMIT {int(page)}", [run_id, after_seq]).fetchall()
    return [EventRow._make(row) for row in rows]


def count_by_type(db: Database, run_id: str) -> list[tuple[str, int]]:
    """(event type, count) for a run, most frequent first."""
    return [
        (row[0], row[1])
        for row in db.execute(
            "SELECT event_type, count(*) AS n FROM events WHERE run_id = ? "
            "GROUP BY event_type ORDER BY n DESC, event_type",
            [run_id],
        ).fetchall()
    ]


def _to_event(row: tuple[Any, ...]) -> TelemetryEvent:
    (run_id, seq, ts, event_type, severity, batch, env_id, epoch, seed_id, slot_id, message,
     data) = row
    try:
        kind = TelemetryEventType(event_type)
    except ValueError:
        raise RegistryError(
            f"event {seq} of run {run_id} has type {event_type}, unknown to this esper version; "
            "upgrade esper to read it"
        ) from None
    return TelemetryEvent(
        run_id, seq, ts, kind, Severity(severity), batch, env_id, epoch, seed_id, slot_id,
        message, decode_payload(kind, data),
    )

