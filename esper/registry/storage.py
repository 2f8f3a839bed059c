"""Storage faults of ``runs.db``: what an SQLite failure means for the user, a space reserve
that lets a run record its end on a full disk, and the removal of a half-created registry.

SQLite reports a read-only file system, a missing write permission and a directory where its
``-wal`` and ``-shm`` files cannot be created all as "unable to open database file" or
"attempt to write a readonly database", and a file size limit as "disk I/O error"; the file
system says which it is, so ``storage_error`` asks it.
"""

from __future__ import annotations

import errno
import logging
import os
import resource
import sqlite3
from pathlib import Path

from esper.registry.errors import RegistryError, RegistryFull, RegistryGone

logger = logging.getLogger(__name__)

RESERVE_BYTES = 2**20  # room kept beside the registry for the end status of a run
WHAT_TO_DO = "pass --registry PATH (or set ESPER_REGISTRY) to use another file"
_LOW_SPACE = 4 * 2**20  # bytes free under which an I/O error is taken for a full disk
_ACCESS = {sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM,
           sqlite3.SQLITE_AUTH}
_DAMAGED = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}
# SQLite result codes that are the storage's fault, not the caller's (primary codes)
_STORAGE_CODES = {sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, *_ACCESS, *_DAMAGED}


def unwritable(path: str | os.PathLike[str]) -> str | None:
    """Why a new file at `path` could not be written (its directory is missing or read-only),
    for output files checked before any work; None when it can be."""
    directory = Path(path).resolve().parent
    if not directory.is_dir():
        return f"{directory} is not a directory"
    if not os.access(directory, os.W_OK):
        return f"{directory} is not writable"
    return None


def is_storage_fault(error: sqlite3.Error) -> bool:
    """True when ``error`` comes from the file or the disk (full, read-only, damaged, ...)."""
    return primary_code(error) in _STORAGE_CODES


def storage_error(path: Path, error: sqlite3.Error) -> RegistryError:
    """The error to show for ``error`` on the registry ``path``: read-only file system, no
    permission, missing directory, full disk or file size limit, damaged file, or the file
    deleted while open; each with what to do about it."""
    code = primary_code(error)
    if getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_READONLY_DBMOVED:
        return gone(path, "deleted or moved")
    if code in (sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR):
        return _space_error(path, error) or RegistryError(
            f"cannot write registry {path}: disk I/O error ({error}); check the disk (dmesg), "
            f"or {WHAT_TO_DO}")
    if code in _ACCESS:
        return _access_error(path) or RegistryError(
            f"cannot open registry {path} ({error}); {WHAT_TO_DO}")
    return unusable(str(path), error)


def unusable(registry: str, error: sqlite3.Error) -> RegistryError:
    """The error for a registry SQLite cannot read: damaged, or not a database at all."""
    return RegistryError(f"{registry} is not a usable SQLite database ({error}); restore it "
                         f"from a backup, move it away, or {WHAT_TO_DO}")


def gone(path: Path, how: str) -> RegistryGone:
    """The error for a registry file ``how`` ("deleted", "replaced by another file") while
    esper had it open: esper no longer writes to it (see ``Registry._write``)."""
    return RegistryGone(f"registry {path} was {how} while esper had it open, so esper stopped "
                        "writing to it")


def no_permission(path: Path, what: str) -> RegistryError:
    """The error for a registry this process may not ``what`` ("read", "write")."""
    return RegistryError(f"no permission to {what} registry {path}; fix its permissions, or "
                         f"{WHAT_TO_DO}")


def missing_directory(path: Path) -> RegistryError | None:
    """The error for a new registry whose directory does not exist (or is a file), else None."""
    if not path.parent.exists():
        return RegistryError(f"cannot create registry {path}: the directory {path.parent} does "
                             f"not exist; create it, or {WHAT_TO_DO}")
    if not path.parent.is_dir():
        return RegistryError(f"cannot create registry {path}: {path.parent} is not a directory")
    return None


def keep_reserve(path: Path) -> None:
    """Make sure ``RESERVE_BYTES`` of disk are held beside the registry (``<name>-reserve``),
    so a run that fills the disk can still record how it ended (``release_reserve``). Never
    fails: without room for a reserve there is none."""
    reserve = _reserve_path(path)
    try:
        fd = os.open(reserve, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return
    except OSError as exc:
        logger.debug("no space reserve for %s: %s", path, exc)
        return
    try:
        os.posix_fallocate(fd, 0, RESERVE_BYTES)
    except OSError as exc:  # full already, or a file system without fallocate
        logger.debug("no space reserve for %s: %s", path, exc)
        reserve.unlink(missing_ok=True)
    finally:
        os.close(fd)


def release_reserve(path: Path) -> bool:
    """Free the space reserve of the registry ``path``; False when there was none."""
    try:
        _reserve_path(path).unlink()
    except OSError:
        return False
    return True


def remove_partial(path: Path, conn: sqlite3.Connection) -> None:
    """Close ``conn``, which began to create the registry ``path``, and delete the file (and
    its ``-wal`` / ``-shm``) unless it has tables by now: another process may have set it up
    meanwhile. Checked through ``conn``, which needs no disk space to read."""
    try:
        empty = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0
    except sqlite3.Error as exc:
        logger.debug("half-created registry %s left in place: %s", path, exc)
        empty = False
    conn.close()
    if empty:
        for suffix in ("", "-wal", "-shm", "-journal"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)


def primary_code(error: sqlite3.Error) -> int | None:
    """The primary SQLite result code of `error` (SQLITE_FULL, ...; extended codes folded), None
    for an error Python raised itself."""
    code = getattr(error, "sqlite_errorcode", None)  # absent on errors raised by Python itself
    return None if code is None else code & 0xFF


def _reserve_path(path: Path) -> Path:
    return path.with_name(f"{path.name}-reserve")


def _space_error(path: Path, error: sqlite3.Error) -> RegistryFull | None:
    """A full disk or a reached file size limit (SQLite reports the latter as an I/O error)."""
    limit, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    if limit != resource.RLIM_INFINITY and any(
            _size(path.with_name(path.name + suffix)) + 65_536 > limit for suffix in ("", "-wal")):
        return RegistryFull(f"cannot write registry {path}: it reached the file size limit of "
                            f"this process (ulimit -f: {limit} bytes); raise the limit, or "
                            f"{WHAT_TO_DO}")
    try:
        disk = os.statvfs(_existing_ancestor(path))
        free: int | None = disk.f_bavail * disk.f_frsize
    except OSError:
        free = None
    if primary_code(error) == sqlite3.SQLITE_FULL or (free is not None and free < _LOW_SPACE):
        return RegistryFull(f"cannot write registry {path}: the disk is full ({error}); free "
                            f"some space on it, or {WHAT_TO_DO}")
    return None


def _access_error(path: Path) -> RegistryError | None:
    """Why the file system refuses ``path``, asked of it: read-only file system, missing
    directory, no permission to read, or to write the file or its directory."""
    if missing := missing_directory(path):
        return missing
    real = path.resolve()  # the directory SQLite writes in is the link target's
    if os.statvfs(real.parent).f_flag & os.ST_RDONLY:  # EROFS, even for root
        return RegistryError(
            f"registry {path} is on a read-only file system: commands that only read it "
            f"(esper runs, show, events, compare, wiring) work, recording a run does not; "
            f"{WHAT_TO_DO}")
    for flags, what in ((os.O_RDONLY, "read"), (os.O_RDWR, "write")):
        try:
            os.close(os.open(path, flags))
        except OSError as exc:
            if exc.errno not in (errno.EACCES, errno.EPERM):
                break  # missing: SQLite could not create it, the directory says why
            return no_permission(path, what)
    if not os.access(real.parent, os.W_OK):
        return RegistryError(
            f"no permission to write the directory {real.parent}, where SQLite keeps the "
            f"{path.name}-wal and {path.name}-shm files beside the registry; fix its "
            f"permissions, or {WHAT_TO_DO}")
    return None


def _existing_ancestor(path: Path) -> Path:
    path = path.absolute()
    while not path.exists():
        path = path.parent
    return path


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
