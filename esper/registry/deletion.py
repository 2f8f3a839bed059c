"""Deleting runs from ``runs.db`` and their files, and collecting files no run references.

A run's rows live in five tables (runs, events, metrics, wiring, artifacts); they go in one
write transaction, which first checks that no run to delete is RUNNING (its process alive:
``runs.Liveness``), so a run resumed meanwhile (``esper sweep --resume``) is not cut from under
its process. A run's files are the ones the ``artifacts`` table lists and its directory
``artifacts/<run id>/`` beside the registry (``esper.experiment.runner.artifact_dir``); they are
removed after the rows, so a crash in between leaves files that ``esper gc`` collects, never
rows that name missing files.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlite_utils import Database

from esper.registry.errors import RunHasChildren, RunInUse
from esper.registry.records import RunRecord, RunStatus
from esper.registry.runs import Liveness, get_run

if TYPE_CHECKING:
    from esper.registry.registry import Registry

ARTIFACTS_DIR = "artifacts"  # beside the registry: artifacts/<run id>/
RUN_TABLES = ("runs", "events", "metrics", "wiring", "artifacts")  # every table keyed by run_id
_RUN_ID = re.compile(r"[0-9a-f]{12}")  # the shape of a run id (runs.new_run_id)


@dataclass(frozen=True)
class FileEntry:
    """A file or directory to remove, and the bytes of the files in it."""

    path: str  # absolute
    bytes: int


@dataclass(frozen=True)
class DeletionPlan:
    """What deleting some runs removes from the registry and the disk."""

    runs: tuple[RunRecord, ...]  # the runs named, then their children (with_children)
    rows: dict[str, int]  # rows per table
    files: tuple[FileEntry, ...]

    @property
    def bytes(self) -> int:
        return sum(entry.bytes for entry in self.files)


def plan_deletion(registry: Registry, refs: Sequence[str], *,
                  with_children: bool = False) -> DeletionPlan:
    """What deleting the runs ``refs`` name removes (nothing is removed here).

    :param with_children: also delete the runs whose parent is deleted (a sweep's trials),
        and theirs; without it, a parent is refused unless its children are named too
    Raises:
        RunNotFound, AmbiguousRun: a reference does not name one run.
        RunInUse: a run is RUNNING (its process lives).
        RunHasChildren: a run is the parent of runs that are not deleted.
    """
    records = {record.run_id: record for record in map(registry.resolve, refs)}
    while children := [i for i in registry.child_ids(list(records)) if i not in records]:
        if not with_children:
            parent = records[registry.run(children[0]).parent_run_id or ""]
            raise RunHasChildren(
                f"run {parent.run_id} ({parent.name}) is the {parent.kind.value} parent of "
                f"{len(children)} run(s) not named, e.g. {children[0]}: add --with-children "
                "to delete them too")
        records.update((i, registry.run(i)) for i in children)
    for record in records.values():
        if record.status is RunStatus.RUNNING:
            raise running_error(record)
    ids = list(records)
    files = [entry for record in records.values()
             for entry in run_files(registry.path, record.run_id,
                                    registry.artifacts(record.run_id).values())]
    return DeletionPlan(tuple(records.values()), registry.row_counts(ids), tuple(files))


def running_error(record: RunRecord) -> RunInUse:
    return RunInUse(f"run {record.run_id} ({record.name}) is RUNNING (pid {record.pid} on "
                    f"{record.host}): stop it, or wait for it to end, before deleting it", record)


def artifact_root(registry_path: Path) -> Path:
    """The directory that holds a directory of files per run, beside the registry."""
    return registry_path.absolute().parent / ARTIFACTS_DIR


def row_counts(db: Database, run_ids: Sequence[str]) -> dict[str, int]:
    """Rows of ``run_ids`` per table (``RUN_TABLES``)."""
    marks = ", ".join("?" * len(run_ids))
    return {table: db.execute(f"SELECT count(*) FROM {table} WHERE run_id IN ({marks})",
                              list(run_ids)).fetchone()[0] for table in RUN_TABLES}


def delete_rows(db: Database, run_ids: Sequence[str], liveness: Liveness) -> list[RunRecord]:
    """Delete every row of ``run_ids``; call inside a write transaction. Returns the runs that
    are RUNNING (and deletes nothing) when there are any."""
    records = [get_run(db, run_id, liveness) for run_id in run_ids]
    running = [r for r in records if r is not None and r.status is RunStatus.RUNNING]
    if running:
        return running
    marks = ", ".join("?" * len(run_ids))
    for table in RUN_TABLES:
        db.execute(f"DELETE FROM {table} WHERE run_id IN ({marks})", list(run_ids))
    return []


def run_files(registry_path: Path, run_id: str, recorded: Iterable[str]) -> list[FileEntry]:
    """What deleting run ``run_id`` removes from disk: its directory ``artifacts/<run id>/``
    and the files it recorded elsewhere, those that exist."""
    directory = artifact_root(registry_path) / run_id
    entries = [FileEntry(str(directory), _size(directory))] if _exists(directory) else []
    for path in recorded:
        file = Path(path).absolute()
        if directory not in file.parents and _exists(file):
            entries.append(FileEntry(str(file), _size(file)))
    return entries


def orphan_files(registry_path: Path, run_ids: set[str]) -> list[FileEntry]:
    """The entries of ``artifacts/`` named like a run id that is not in ``run_ids``, by name.
    Other names (a user's own files) are left alone."""
    root = artifact_root(registry_path)
    if not root.is_dir():
        return []
    return [FileEntry(str(entry), _size(entry)) for entry in sorted(root.iterdir())
            if _RUN_ID.fullmatch(entry.name) and entry.name not in run_ids]


def remove(entries: Iterable[FileEntry]) -> None:
    """Remove each file or directory (a symbolic link is removed, never followed).

    Raises:
        OSError: one cannot be removed (the ones before it are gone).
    """
    for entry in entries:
        path = Path(entry.path)
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif _exists(path):
            path.unlink()


def _exists(path: Path) -> bool:
    return path.exists() or path.is_symlink()


def _size(path: Path) -> int:
    """Bytes of the file at ``path``, or of every file under the directory (links not followed)."""
    if path.is_symlink() or not path.is_dir():
        return path.lstat().st_size
    return sum((Path(folder) / name).lstat().st_size
               for folder, _, names in os.walk(path) for name in names)
