"""The sweep's run in MLflow: the parent of its trials' MLflow runs (``mlflow.parentRunId``).

Imports mlflow (~3 s): the driver imports this module only when the sweep records to MLflow.
An unreachable store never stops the sweep: it is reported once, the trials still go to
runs.db, and ``esper sync`` pushes them later.
"""

from __future__ import annotations

import logging
import time

from mlflow.entities import Metric, RunTag

from esper.leyline.config import TrackingConfig
from esper.nissa.mlflow_run import (MLFLOW_STATUS, TAG_EXIT_REASON, TAG_STATUS,
                                    create_mlflow_run, end_stale_runs, to_ms)
from esper.nissa.mlflow_sink import MlflowSink, MlflowTarget
from esper.nissa.mlflow_store import MlflowStore, MlflowUnavailable
from esper.registry import Registry, RunRecord, RunStatus

log = logging.getLogger(__name__)

TAG_PARENT = "mlflow.parentRunId"  # MLflow's own tag: the UI nests the run under its parent
TAG_BEST_RUN = "esper.sweep.best_run"  # the esper run id of the best trial


class ParentRun:
    """The MLflow side of a sweep: its parent run, and a sink for each trial."""

    def __init__(self, registry: Registry, target: MlflowTarget | MlflowUnavailable) -> None:
        self._registry = registry
        self._target = target
        self.mlflow_run_id: str | None = None

    @classmethod
    def open(cls, tracking: TrackingConfig, experiment: str, registry: Registry,
             parent: RunRecord) -> ParentRun:
        """Create the parent MLflow run of `parent` (or mark the existing one RUNNING again,
        on resume) and link it in the registry."""
        try:
            target = MlflowTarget.open(tracking.uri, tracking.experiment or experiment)
        except MlflowUnavailable as failure:
            log.warning("the sweep is not recorded in MLflow: %s", failure.message)
            return cls(registry, failure)
        found = cls(registry, target)
        with target.store.reporting(f"record sweep {parent.run_id}"):
            end_stale_runs(target.store, registry)
            if parent.mlflow_run_id is None:
                found.mlflow_run_id = create_mlflow_run(target.store, target.experiment_id,
                                                        parent, registry.path)
                registry.set_mlflow_ids(parent.run_id, found.mlflow_run_id, target.experiment_id)
            else:
                found.mlflow_run_id = parent.mlflow_run_id
                target.store.client.update_run(parent.mlflow_run_id, status="RUNNING")
        return found

    @property
    def store(self) -> MlflowStore | None:
        """The open store, None when it could not be reached."""
        return None if isinstance(self._target, MlflowUnavailable) else self._target.store

    def trial_sink(self) -> MlflowSink:
        """The sink of one trial (its MLflow run is created from its row on its first events)."""
        return MlflowSink(self._registry, self._target)

    def end(self, parent: RunRecord, metric: str, best: tuple[str, float] | None) -> None:
        """End the parent MLflow run with the sweep's status and its best trial (run id and
        metric value) if one was measured."""
        if self.mlflow_run_id is None or isinstance(self._target, MlflowUnavailable):
            return
        tags = [RunTag(TAG_STATUS, parent.status.value)]
        if parent.exit_reason:
            tags.append(RunTag(TAG_EXIT_REASON, parent.exit_reason))
        metrics = []
        if best is not None:
            tags.append(RunTag(TAG_BEST_RUN, best[0]))
            metrics.append(Metric(metric, best[1], to_ms(time.time()), 0))
        client = self._target.store.client
        try:
            with self._target.store.reporting(f"end MLflow run {self.mlflow_run_id}"):
                client.log_batch(self.mlflow_run_id, metrics=metrics, tags=tags)
                client.set_terminated(self.mlflow_run_id,
                                      MLFLOW_STATUS[RunStatus(parent.status)],
                                      end_time=to_ms(parent.ended_at or time.time()))
        except MlflowUnavailable as failure:
            log.warning("the sweep's MLflow run was not ended: %s", failure.message)
