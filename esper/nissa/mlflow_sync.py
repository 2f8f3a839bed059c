"""``esper sync``: push a run recorded in ``runs.db`` to MLflow after the fact.

For a run whose MLflow store was unreachable, that failed halfway, or that ran with
``--no-mlflow``. The run's events are read back from the registry and replayed through the same
``MlflowSink`` a live run uses, so the MLflow run gets the same params, tags, metric histories
(steps and timestamps included), artifacts and status as if it had been recorded live.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice

from mlflow.entities import Run

from esper.leyline.events import TelemetryEvent
from esper.nissa.mlflow_run import MLFLOW_STATUS, TAG_EVENTS, end_stale_runs, mlflow_runs_of
from esper.nissa.mlflow_sink import MlflowSink, MlflowTarget
from esper.nissa.mlflow_wiring import log_wiring
from esper.nissa.mlflow_store import TrackingError
from esper.registry import Registry, RunRecord, RunStatus

REPLAY_BATCH = 5_000  # events per write, like the hub's batches of a fast run


@dataclass(frozen=True)
class SyncResult:
    """What ``sync_run`` did for one run."""

    run_id: str
    name: str
    mlflow_run_id: str
    mlflow_experiment_id: str
    uri: str  # the tracking store
    pushed: bool  # False: MLflow already held the complete run, nothing was written


def sync_run(registry: Registry, ref: str, *, uri: str | None = None,
             force: bool = False) -> SyncResult:
    """Make MLflow hold the run ``ref`` names, as recorded in the registry.

    The run's MLflow runs are found by their ``esper.run_id`` tag, so one the registry never
    linked (the store failed right after creating it) counts too. A complete one (same status,
    built from all the run's events) is kept unless ``force``; every other one (incomplete: the
    store failed or hung during the run, or its end was cut short) is deleted, so the store
    holds exactly one MLflow run of the esper run afterwards.

    :param uri: the tracking store; None: the run's ``tracking.uri``, else
        ``$MLFLOW_TRACKING_URI``, else ``./mlflow.db``
    Raises:
        RunNotFound, AmbiguousRun: ``ref`` does not name one run.
        TrackingError: the run is still RUNNING.
        MlflowUnavailable: the store cannot be reached or written.
    """
    record = registry.resolve(ref)
    if record.status is RunStatus.RUNNING:
        raise TrackingError(f"run {record.run_id} ({record.name}) is still RUNNING; "
                            "sync it once it has ended")
    configured_uri, experiment = _tracking_of(record)
    target = MlflowTarget.open(uri or configured_uri, experiment)
    store = target.store
    with store.reporting(f"sync run {record.run_id}"):
        end_stale_runs(store, registry)
        previous = mlflow_runs_of(store, record.run_id)
        kept = None if force else next((r for r in previous if _complete(r, record)), None)
        for other in previous:
            if other is not kept:  # incomplete, a duplicate, or forced: replaced below
                store.client.delete_run(other.info.run_id)
        if kept is not None:
            if kept.info.run_id != record.mlflow_run_id:
                registry.set_mlflow_ids(record.run_id, kept.info.run_id,
                                        kept.info.experiment_id)
            return SyncResult(record.run_id, record.name, kept.info.run_id,
                              kept.info.experiment_id, store.location.uri, pushed=False)
    sink = MlflowSink(registry, target)
    try:
        for events in _batches(registry.events(record.run_id)):
            sink.write(events)
    finally:
        sink.close()
    if sink.mlflow_run_id is None:
        raise TrackingError(f"run {record.run_id} ({record.name}) recorded no event: "
                            "nothing to push to MLflow")
    wiring = registry.wiring(record.run_id)
    if wiring:
        log_wiring(store, registry.run(record.run_id), wiring)
    return SyncResult(record.run_id, record.name, sink.mlflow_run_id, target.experiment_id,
                      store.location.uri, pushed=True)


def _complete(mlflow_run: Run, record: RunRecord) -> bool:
    """Ended with the registry's status, built from every event the registry holds."""
    return (mlflow_run.info.status == MLFLOW_STATUS[record.status]
            and mlflow_run.data.tags.get(TAG_EVENTS) == str(record.event_count))


def _tracking_of(record: RunRecord) -> tuple[str | None, str]:
    """(tracking.uri, MLflow experiment name) from the run's resolved config."""
    # Runs recorded through the library may carry any config: no tracking section, defaults.
    tracking = record.config.get("tracking") or {}
    return tracking.get("uri"), tracking.get("experiment") or record.experiment


def _batches(events: Iterator[TelemetryEvent]) -> Iterator[list[TelemetryEvent]]:
    while batch := list(islice(events, REPLAY_BATCH)):
        yield batch
