"""Opening ``runs.db``: path resolution, file checks, WAL, busy timeout, schema set-up, and the
write transaction (``BEGIN IMMEDIATE ... COMMIT`` with retry and backoff).

Several processes may write one ``runs.db`` at once (docs/architecture.md §4). WAL lets readers
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

from esper.registry.errors import BadRegistryPath, RegistryError
from esper.registry.schema import KNOWN_MIGRATIONS, MIGRATION_SET, MIGRATIONS
from esper.registry.storage import (WHAT_TO_DO, missing_directory, no_permission, primary_code,
                                    remove_partial, storage_error)

DEFAULT_PATH = "runs.db"
ENV_VAR = "ESPER_REGISTRY"
BUSY_TIMEOUT_MS = 10_000  # SQLite waits this long for a lock before it reports busy
PAGE_SIZE = 16_384  # bytes, for new registries
CACHE_KIB = 65_536  # page cache per connection, KiB
LOCK_TIMEOUT = 120.0  # seconds of retries before a locked database becomes a RegistryError
_SQLITE_MAGIC = b"SQLite format 3\x00"

T = TypeVar("T")


def registry_path(path: str | os.PathLike[str] | None = None) -> Path:
    """The registry file: ``path`` if given, else ``$ESPER_REGISTRY``, else ``./runs.db``.

    Raises:
        BadRegistryPath: ``:memory:`` (SQLite would keep the runs in memory, or write a file
            of that name) or a URI such as ``sqlite:///runs.db``: the registry is a file path.
    """
    chosen = os.fspath(path) if path is not None else os.environ.get(ENV_VAR) or DEFAULT_PATH
    if Path(chosen).name == ":memory:" or "://" in chosen or chosen.startswith("file:"):
        raise BadRegistryPath(f"the registry is a file that keeps runs for later commands, not "
                              f"{chosen!r}; {WHAT_TO_DO}, e.g. --registry runs.db")
    return Path(chosen)


def connect(path: Path, *, create: bool) -> Database:
    """Open ``path`` as an esper registry, creating or upgrading its schema.

    The connection may be used from several threads (the caller serialises them) and is in
    autocommit mode: every write goes through ``write_transaction``.

    A new file that cannot be set up (full disk, Ctrl-C) is removed again, not left half-made.

    Raises:
        RegistryError: the file is missing (and ``create`` is False), is not SQLite, is
            damaged, belongs to another application, or has a newer schema than this esper;
            or the storage refuses it (see ``storage.storage_error``).
    """
    _check_file(path, create=create)
    created = not path.exists()
    try:
        conn = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
        )
    except sqlite3.Error as exc:
        raise storage_error(path, exc) from exc
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        db = Database(conn, execute_plugins=False)
        # Reads only, before any setting is written: a foreign file is refused untouched.
        _check_contents(db, path, create=create)  # up to date: opened without a write lock
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
    except BaseException as exc:
        if created:
            remove_partial(path, conn)
        conn.close()
        if isinstance(exc, sqlite3.DatabaseError):
            raise storage_error(path, exc) from exc
        raise
    return db


def connect_read_only(path: Path) -> Database:
    """Open the existing registry ``path`` for reading only: commands that only read work on
    a read-only copy (file system, file or directory). A registry of an older schema is
    upgraded first, which writes.

    SQLite reads a WAL-mode file through a ``-shm`` file it creates beside it; where the
    directory cannot hold one, the file is opened ``immutable``: SQLite then reads the main
    file alone, which holds everything unless a ``-wal`` file has changes not copied into it.

    Raises:
        RegistryError: as ``connect``, and when a read-only directory holds such a ``-wal``.
    """
    _check_file(path, create=False)
    db = _open_read_only(path)
    try:
        _check_contents(db, path, create=False)
        outdated = bool(MIGRATIONS.pending(db))
    except BaseException as exc:
        db.close()
        if isinstance(exc, sqlite3.DatabaseError):
            raise storage_error(path, exc) from exc
        raise
    if not outdated:
        return db
    db.close()
    try:
        connect(path, create=False).close()  # upgrades the schema
    except RegistryError as error:
        raise RegistryError(f"{path} has the registry schema of an older esper, upgraded before "
                            f"it is read, and the upgrade failed: {error.message}") from error
    return _open_read_only(path)


def _open_read_only(path: Path) -> Database:
    uri = path.absolute().as_uri()  # percent-encodes '?', '#' and '%' in the path
    try:
        conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000,
                               isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA schema_version")  # reads the file (and creates its -shm)
        except sqlite3.OperationalError as exc:
            conn.close()
            refused = primary_code(exc) in (sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY)
            if not refused or os.access(path.resolve().parent, os.W_OK):
                raise
            _check_no_pending_wal(path.resolve())
            conn = sqlite3.connect(f"{uri}?immutable=1", uri=True, isolation_level=None,
                                   check_same_thread=False)
            conn.execute("PRAGMA schema_version")
    except sqlite3.DatabaseError as exc:
        raise storage_error(path, exc) from exc
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return Database(conn, execute_plugins=False)


def _check_no_pending_wal(path: Path) -> None:
    wal = path.with_name(f"{path.name}-wal")
    if wal.exists() and wal.stat().st_size > 0:
        raise RegistryError(
            f"cannot read registry {path}: {wal.name} holds changes not yet copied into it, "
            f"and SQLite cannot read them without creating {path.name}-shm in the read-only "
            f"directory {path.parent}; copy both files to a writable directory, or {WHAT_TO_DO}")


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
                f"no registry at {path}: run an experiment first, or {WHAT_TO_DO}"
            )
        if missing := missing_directory(path):
            raise missing
        return
    if path.is_dir():
        raise RegistryError(f"registry path {path} is a directory; {WHAT_TO_DO}")
    try:
        with path.open("rb") as f:
            header = f.read(len(_SQLITE_MAGIC))
    except PermissionError as exc:
        raise no_permission(path, "read") from exc
    if header and header != _SQLITE_MAGIC:
        raise RegistryError(f"{path} is not an SQLite database; {WHAT_TO_DO}")


def _check_contents(db: Database, path: Path, *, create: bool) -> None:
    """Refuse a file that is not an esper registry (an empty one is, when ``create``)."""
    _check_schema(db, path)
    if not create and not MIGRATIONS.applied(db):
        raise RegistryError(f"{path} is empty, not an esper registry; {WHAT_TO_DO}")


def _check_schema(db: Database, path: Path) -> None:
    """Refuse a database that is another application's, or that a newer esper has upgraded."""
    applied = [m.name for m in MIGRATIONS.applied(db)]
    if not applied:
        others = [t for t in db.table_names() if t != MIGRATIONS.migrations_table]
        if others:
            shown = ", ".join(others[:5]) + (", ..." if len(others) > 5 else "")
            raise RegistryError(
                f"{path} is an SQLite database but not an esper registry (tables: {shown}); "
                f"{WHAT_TO_DO}"
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
