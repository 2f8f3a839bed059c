"""WAL checkpoints off the writing thread.

In WAL mode every commit appends pages to ``runs.db-wal``; a checkpoint copies them back into
``runs.db``. By default SQLite runs that copy inside the ``COMMIT`` that crosses 1,000 WAL
pages, so the thread writing telemetry stalls on it (1.1 of the 5.6 us of SQLite CPU time per
event row when measured). A ``Checkpointer`` turns that off on the writing
connection and checkpoints from its own thread and connection instead, while the writer goes
on: WAL lets one checkpointer run beside one writer (https://www.sqlite.org/wal.html).

A ``PASSIVE`` checkpoint never waits for readers or writers, so it cannot delay a run; frames
it could not copy are copied by the next one, and SQLite checkpoints what is left when the last
connection closes. Committed data is in the WAL either way: a crash between checkpoints loses
nothing.

SQLite rewinds the WAL to its start only when a write begins after a checkpoint has copied
every frame. Under a steady stream of writes the background checkpoint never quite catches up,
and the WAL grew as large as the events themselves (~400 MB for 500,000 events). So once the
WAL passes ``WAL_LIMIT``, the writer copies the few frames left itself, right after its commit
(at most once per ``WRITER_INTERVAL``): its next write then starts the WAL again from the
beginning and truncates the file to a quarter of the limit (``journal_size_limit``), so the
rule stays quiet until the WAL has grown again.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from contextlib import closing
from pathlib import Path

logger = logging.getLogger(__name__)

MIN_INTERVAL = 0.25  # seconds from the end of one checkpoint to the start of the next, at least
WAL_LIMIT = 64 * 2**20  # bytes of WAL past which the writer finishes the checkpoint itself
WRITER_INTERVAL = 0.25  # seconds between two such checkpoints of the writer, at least


class Checkpointer:
    """Checkpoints ``path``'s WAL on a background thread after writes, ``MIN_INTERVAL`` apart.

    :param writer: the writing connection; its automatic checkpoints are turned off
    """

    def __init__(self, path: Path, writer: sqlite3.Connection) -> None:
        writer.execute("PRAGMA wal_autocheckpoint = 0")
        writer.execute(f"PRAGMA journal_size_limit = {WAL_LIMIT // 4}")
        self._path = path
        self._wal = path.with_name(path.name + "-wal")
        self._writer = writer
        self._writer_checkpointed = -WRITER_INTERVAL  # time.monotonic() of the writer's last
        self._wanted = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._requested = 0  # requests so far
        self._covered = 0  # requests made before the start of the last finished checkpoint

    def request(self) -> None:
        """Ask for a checkpoint soon (called after a commit, under the registry's lock, so the
        writing connection is free); past ``WAL_LIMIT``, finish it now on that connection."""
        if self._thread is None:  # started on the first write: readers never pay for it
            self._thread = threading.Thread(
                target=self._run, name="esper-registry-checkpoint", daemon=True
            )
            self._thread.start()
        self._requested += 1
        self._wanted.set()
        now = time.monotonic()
        if now - self._writer_checkpointed >= WRITER_INTERVAL and self._wal_size() > WAL_LIMIT:
            self._writer_checkpointed = now
            self._checkpoint(self._writer)  # mostly copied already by the background thread

    def caught_up(self) -> bool:
        """True when a checkpoint has run to its end since the last request."""
        return self._covered >= self._requested

    def close(self) -> None:
        """Stop the thread (after the checkpoint under way, if any)."""
        self._stop.set()
        self._wanted.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        try:
            # mode=rw: a registry deleted meanwhile is not created again, empty, at its path
            conn = sqlite3.connect(f"{self._path.absolute().as_uri()}?mode=rw", uri=True,
                                   isolation_level=None)
        except sqlite3.Error as exc:  # the WAL is still checkpointed when the registry closes
            logger.warning("cannot checkpoint registry %s while it is written: %s", self._path, exc)
            return
        with closing(conn):
            while True:
                self._wanted.wait()
                self._wanted.clear()
                if self._stop.is_set():
                    return
                covering = self._requested
                self._checkpoint(conn)
                self._covered = covering
                self._stop.wait(MIN_INTERVAL)  # requests meanwhile make one checkpoint

    def _wal_size(self) -> int:
        try:
            return self._wal.stat().st_size
        except FileNotFoundError:
            return 0

    def _checkpoint(self, conn: sqlite3.Connection) -> None:
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as exc:  # harmless: the next checkpoint copies these frames
            logger.debug("checkpoint of %s failed: %s", self._path, exc)
