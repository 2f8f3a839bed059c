"""Run management over the registry and MLflow together: ``esper delete``, ``esper gc``,
``esper tag`` and ``esper note``.

The registry is changed first and is the record: an MLflow store that cannot be reached is
reported (``MlflowChange.error``), never fatal, with the command that finishes the job later
(``esper gc --mlflow`` for deleted runs, ``esper sync RUN --force`` for tags and notes, which
rebuilds the MLflow run from the registry's row). A run's MLflow runs are the one the registry
links (``mlflow_run_id``) and any other whose ``esper.run_id`` tag names it, in the run's store
(``tracking.uri``, else ``$MLFLOW_TRACKING_URI``, else ``./mlflow.db``, or ``uri`` when given);
an SQLite store that does not exist holds none and is not created. MLflow's ``delete_run``
marks a run deleted; ``mlflow gc`` removes it and its artifacts for good.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from esper.nissa.mlflow_run import TAG_NOTE, TAG_REGISTRY, TAG_RUN_ID, esper_runs, mlflow_runs_of
from esper.nissa.mlflow_store import MlflowStore, MlflowUnavailable, locate_store
from esper.registry import Registry, RunRecord
from esper.registry.deletion import DeletionPlan, FileEntry, orphan_files, plan_deletion, remove


@dataclass(frozen=True)
class MlflowChange:
    """The MLflow runs found (and, unless a dry run or ``error``, changed) in one store."""

    uri: str
    run_ids: tuple[str, ...]  # MLflow run ids
    error: str | None = None  # the store could not be reached or written: nothing changed


@dataclass(frozen=True)
class DeletionReport:
    """What ``delete_runs`` removed (or, in a dry run, would remove)."""

    plan: DeletionPlan
    mlflow: tuple[MlflowChange, ...]
    dry_run: bool

    def to_dict(self) -> dict[str, Any]:
        """The JSON of ``esper delete --json``."""
        return {"dry_run": self.dry_run,
                "runs": [{"run_id": r.run_id, "name": r.name, "kind": r.kind.value}
                         for r in self.plan.runs],
                "rows": self.plan.rows, "files": [asdict(f) for f in self.plan.files],
                "bytes": self.plan.bytes, "mlflow": [asdict(c) for c in self.mlflow]}


@dataclass(frozen=True)
class GarbageReport:
    """What ``collect_garbage`` removed (or would remove)."""

    files: tuple[FileEntry, ...]
    mlflow: tuple[MlflowChange, ...]
    dry_run: bool

    @property
    def bytes(self) -> int:
        return sum(entry.bytes for entry in self.files)

    def to_dict(self) -> dict[str, Any]:
        """The JSON of ``esper gc --json``."""
        return {"dry_run": self.dry_run, "files": [asdict(f) for f in self.files],
                "bytes": self.bytes, "mlflow": [asdict(c) for c in self.mlflow]}


def delete_runs(registry: Registry, refs: Sequence[str], *, with_children: bool = False,
                dry_run: bool = False, uri: str | None = None) -> DeletionReport:
    """Delete the runs ``refs`` name: their rows (one transaction), their files, their MLflow
    runs. ``dry_run``: find all of it, change nothing.

    Raises:
        RunNotFound, AmbiguousRun, RunInUse, RunHasChildren: see ``plan_deletion``.
    """
    plan = plan_deletion(registry, refs, with_children=with_children)
    if not dry_run:
        registry.delete_runs([record.run_id for record in plan.runs])
        remove(plan.files)

    def delete(client: MlflowClient, mlflow_run_id: str) -> None:
        client.delete_run(mlflow_run_id)
    return DeletionReport(plan, _in_stores(plan.runs, uri, None if dry_run else delete), dry_run)


def collect_garbage(registry: Registry, *, dry_run: bool = False, mlflow: bool = False,
                    uri: str | None = None) -> GarbageReport:
    """Remove what no run of the registry references: the directories (and files) under
    ``artifacts/`` named like a run id that is not in the registry and, with ``mlflow``, the
    MLflow runs recorded from this registry (tag ``esper.registry``) whose esper run is gone.

    :param uri: the MLflow store; None: ``$MLFLOW_TRACKING_URI``, else ``./mlflow.db``
    """
    files = orphan_files(registry.path, registry.run_ids())  # ids read after the listing:
    if not dry_run:  # a run created meanwhile has its row (see orphan_files)
        remove(files)
    changes = (_orphan_mlflow_runs(registry, uri, dry_run),) if mlflow else ()
    return GarbageReport(tuple(files), tuple(c for c in changes if c is not None), dry_run)


def tag_run(registry: Registry, ref: str, tags: Mapping[str, str], removed: Sequence[str] = (),
            *, uri: str | None = None) -> tuple[RunRecord, tuple[MlflowChange, ...]]:
    """Set ``tags`` and remove the keys ``removed`` on run ``ref`` and its MLflow runs.

    Raises:
        RunNotFound, AmbiguousRun: ``ref`` does not name one run.
        BadTag: a key is reserved or invalid, or a value too long.
    """
    record = registry.resolve(ref)
    registry.set_tags(record.run_id, tags, removed)

    def change(client: MlflowClient, mlflow_run_id: str) -> None:
        for key, value in tags.items():
            client.set_tag(mlflow_run_id, key, value)
        for key in removed:
            if key in client.get_run(mlflow_run_id).data.tags:
                client.delete_tag(mlflow_run_id, key)
    return registry.run(record.run_id), _in_stores([record], uri, change)


def note_run(registry: Registry, ref: str, notes: str, *, uri: str | None = None
             ) -> tuple[RunRecord, tuple[MlflowChange, ...]]:
    """Replace the notes of run ``ref``, and the description of its MLflow runs.

    Raises:
        RunNotFound, AmbiguousRun: ``ref`` does not name one run.
    """
    record = registry.resolve(ref)
    registry.set_notes(record.run_id, notes)

    def change(client: MlflowClient, mlflow_run_id: str) -> None:
        client.set_tag(mlflow_run_id, TAG_NOTE, notes)
    return registry.run(record.run_id), _in_stores([record], uri, change)


def _in_stores(records: Sequence[RunRecord], uri: str | None,
               change: Callable[[MlflowClient, str], None] | None) -> tuple[MlflowChange, ...]:
    """Find the MLflow runs of ``records``, store by store, and apply ``change`` to each
    (None: find only)."""
    by_store: dict[str, list[RunRecord]] = {}
    for record in records:
        store_uri = _store_uri(record, uri)
        if store_uri is not None:
            by_store.setdefault(store_uri, []).append(record)
    changes = []
    for store_uri, members in by_store.items():
        try:
            store = MlflowStore.open_existing(store_uri)
            if store is None:
                continue
            with store.reporting("find or change the MLflow runs of esper runs"):
                found = [i for record in members for i in _mlflow_run_ids(store, record)]
                for mlflow_run_id in found if change is not None else ():
                    change(store.client, mlflow_run_id)
        except MlflowUnavailable as error:
            changes.append(MlflowChange(store_uri, (), error.message))
            continue
        if found:
            changes.append(MlflowChange(store.location.uri, tuple(found)))
    return tuple(changes)


def _orphan_mlflow_runs(registry: Registry, uri: str | None, dry_run: bool
                        ) -> MlflowChange | None:
    """The MLflow runs of the store whose ``esper.registry`` tag is this registry and whose
    ``esper.run_id`` is not in it, deleted unless ``dry_run``; None: no such store."""
    here = str(registry.path.absolute())
    try:
        store = MlflowStore.open_existing(uri)
        if store is None:
            return None
        with store.reporting("delete the MLflow runs of deleted esper runs"):
            tagged = [r for r in esper_runs(store) if r.data.tags.get(TAG_REGISTRY) == here]
            known = registry.run_ids()  # read after the search: a run created meanwhile counts
            orphans = tuple(r.info.run_id for r in tagged if r.data.tags[TAG_RUN_ID] not in known)
            for mlflow_run_id in orphans if not dry_run else ():
                store.client.delete_run(mlflow_run_id)
    except MlflowUnavailable as error:
        return MlflowChange(locate_store(uri).uri, (), error.message)
    return MlflowChange(store.location.uri, orphans)


def _store_uri(record: RunRecord, uri: str | None) -> str | None:
    """The URI of the store of ``record``'s MLflow runs; None: it never recorded to MLflow."""
    tracking = record.config.get("tracking") or {}  # a library run's config may have none
    if record.mlflow_run_id is None and tracking.get("mlflow") is False:
        return None
    return locate_store(uri or tracking.get("uri")).uri


def _mlflow_run_ids(store: MlflowStore, record: RunRecord) -> list[str]:
    """The linked MLflow run (unless gone or deleted), then the others tagged with the run."""
    ids = []
    if record.mlflow_run_id is not None:
        try:
            linked = store.client.get_run(record.mlflow_run_id)
        except MlflowException as error:
            if error.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
        else:
            if linked.info.lifecycle_stage != "deleted":
                ids.append(record.mlflow_run_id)
    ids += [r.info.run_id for r in mlflow_runs_of(store, record.run_id)
            if r.info.run_id not in ids]
    return ids
