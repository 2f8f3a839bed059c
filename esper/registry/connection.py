"""Opening ``runs.db``: path resolution, file checks, WAL, busy timeout, schema set-up, and the
write transaction (``BEGIN IMMEDIATE ... COMMIT`` with retry and backoff).

Several processes may write one ``runs.db`` at once (DESIGN.md section 4). WAL lets readers
run beside the one writer; ``BEGIN IMMEDIATE`` takes the write lock at the start of a
transaction, so SQLite's busy handler can wait for it (a deferred transaction that upgrades to
a write would get SQLITE_BUSY at once, without waiting); and a transaction that still meets
"database is locked" is retried with exponential backoff until ``lock_timeout``.
"""

from __future__ import annotations

import os
import random
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from sqlite_utils import Database

from esper.registry.errors import RegistryError
from esper.registry.schema import KNOWN_MIGRATIONS, MIGRATION_SET, MIGRATIONS

DEFAULT_PATH = "runs.db"
ENV_VAR = "ESPER_REGISTRY"
BUSY_TIMEOUT_MS = 10_000  # SQLite waits this long for a lock before it reports busy
PAGE_SIZE = 16_384  # bytes, for new registries
CACHE_KIB = 65_536  # page cache per connection, KiB
LOCK_TIMEOUT = 120.0  # seconds of retries before a locked database becomes a RegistryError
_SQLITE_MAGIC = b"SQLite format 3\x00"
_WHAT_TO_DO = "pass --registry PATH (or set ESPER_REGISTRY) to use another file"

T = TypeVar("T")


def registry_path(path: str | os.PathLike[str] | None = None) -> Path:
    """The registry file: ``path`` if given, else ``$ESPER_REGISTRY``, else ``./runs.db``."""
    if path is not None:
        return Path(path)
    return Path(os.environ.get(ENV_VAR) or DEFAULT_PATH)


def connect(path: Path, *, create: bool) -> Database:
    """Open ``path`` as an esper registry, creating or upgrading its schema.

    The connection may be used from several threads (the caller serialises them) and is in
    autocommit mode: every write goes through ``write_transaction``.

    Raises:
        RegistryError: the file is missing (and ``create`` is False), is not SQLite, is
            damaged, belongs to another application, or has a newer schema than this esper.
    """
    _check_file(path, create=create)
    try:
        conn = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
        )
    except sqlite3.Error as exc:
        raise RegistryError(f"cannot open registry {path}: {exc}; {_WHAT_TO_DO}") from exc
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        db = Database(conn, execute_plugins=False)
        # Reads only, before any setting is written: a foreign file is refused untouched.
        _check_schema(db, path)  # an up-to-date registry is opened without a write lock
        if not create and not MIGRATIONS.applied(db):
            raise RegistryError(f"{path} is empty, not an esper registry; {_WHAT_TO_DO}")
        if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            # A new file: 16 KiB pages wrote ~500-byte event rows ~15% faster than the default
            # 4 KiB (benchmarks/registry.py); the page size is fixed once the file has content.
            conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
            # WAL survives in the file: https://www.sqlite.org/wal.html
            retrying(path, lambda: conn.execute("PRAGMA journal_mode = WAL"))
        # NORMAL sync in WAL mode is durable against a crash of the process (a power loss may
        # lose the last transactions, never corrupt the file).
        conn.execute("PRAGMA synchronous = NORMAL")
        # Room for a whole batch of events (20,000 rows of ~900 bytes): with SQLite's default
        # 2 MB the pages spill to the WAL mid-transaction and are written again at COMMIT
        # (3.5 against 4.5 us of CPU per row in benchmarks/registry.py). Grows only as used.
        conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        if MIGRATIONS.pending(db):
            write_transaction(db, path, lambda: _upgrade_schema(db, path))
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise unusable(str(path), exc) from exc
    except BaseException:
        conn.close()
        raise
    return db


def unusable(registry: str, error: sqlite3.DatabaseError) -> RegistryError:
    """The error for a registry SQLite cannot read: damaged, or not a database at all."""
    return RegistryError(f"{registry} is not a usable SQLite database ({error}); restore it "
                         f"from a backup, move it away, or {_WHAT_TO_DO}")


def write_transaction(db: Database, path: Path, body: Callable[[], T]) -> T:
    """Run ``body`` inside ``BEGIN IMMEDIATE ... COMMIT``, retrying while the database is locked.

    ``body`` must only touch the database: it runs again on a retry.

    Raises:
        RegistryError: still locked after ``LOCK_TIMEOUT`` seconds.
    """
    conn = db.conn

    def attempt() -> T:
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = body()
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return result

    return retrying(path, attempt)


def retrying(path: Path, operation: Callable[[], T]) -> T:
    """Call ``operation``; while it fails with "database is locked/busy", back off and retry."""
    deadline = time.monotonic() + LOCK_TIMEOUT
    delay = 0.01
    while True:
        try:
            return operation()
        except sqlite3.OperationalError as exc:
            message = str(exc)
            if "locked" not in message and "busy" not in message:
                raise
            if time.monotonic() > deadline:
                raise RegistryError(
                    f"registry {path} stayed locked for {LOCK_TIMEOUT:.0f} s ({message}); "
                    "is another process holding a write transaction open?"
                ) from exc
        time.sleep(delay * (0.5 + random.random()))  # jitter: writers do not retry in step
        delay = min(delay * 2, 1.0)


def _check_file(path: Path, *, create: bool) -> None:
    if not path.exists():
        if not create:
            raise RegistryError(
                f"no registry at {path}: run an experiment first, or {_WHAT_TO_DO}"
            )
        if not path.parent.is_dir():
            raise RegistryError(f"cannot create registry {path}: {path.parent} is not a directory")
        return
    if path.is_dir():
        raise RegistryError(f"registry path {path} is a directory; {_WHAT_TO_DO}")
    with path.open("rb") as f:
        header = f.read(len(_SQLITE_MAGIC))
    if header and header != _SQLITE_MAGIC:
        raise RegistryError(f"{path} is not an SQLite database; {_WHAT_TO_DO}")


def _check_schema(db: Database, path: Path) -> None:
    """Refuse a database that is another application's, or that a newer esper has upgraded."""
    applied = [m.name for m in MIGRATIONS.applied(db)]
    if not applied:
        others = [t for t in db.table_names() if t != MIGRATIONS.migrations_table]
        if others:
            shown = ", ".join(others[:5]) + (", ..." if len(others) > 5 else "")
            raise RegistryError(
                f"{path} is an SQLite database but not an esper registry (tables: {shown}); "
                f"{_WHAT_TO_DO}"
            )
    unknown = [name for name in applied if name not in KNOWN_MIGRATIONS]
    if unknown:
        raise RegistryError(
            f"{path} has registry schema version {len(applied)} but this esper knows version "
            f"{len(KNOWN_MIGRATIONS)} (unknown migrations in set '{MIGRATION_SET}': "
            f"{', '.join(unknown)}); upgrade esper to read it"
        )


def _upgrade_schema(db: Database, path: Path) -> None:
    """Apply pending migrations inside the caller's ``BEGIN IMMEDIATE``: checked again under the
    write lock, so processes opening a new registry at once set it up exactly once."""
    _check_schema(db, path)
    MIGRATIONS.apply(db)
