"""The MLflow sink: mirrors a run recorded in the registry as one MLflow run
(docs/architecture.md §5).

The hub calls ``write`` and ``close`` on the sink's own thread, so MLflow never delays training:
that thread is the asynchronous path (MLflow's own async queue would add a second thread and
hide failures from the hub's per-sink accounting). On its first events the sink creates the
MLflow run from the registry's row (tags, params, experiment file, resolved config) and records
its id in the row; metric points are sent with ``log_batch`` every ``flush_points`` points or
``flush_seconds`` seconds; every event also goes to a gzip JSONL archive. RUN_FINISHED, the
run's last event, carries the status the registry stores: on ``close`` the sink terminates the
MLflow run with that status, then uploads the archive (and, up to PREVIEW_LIMIT, an uncompressed
copy the UI can preview), the learning-curve and growth plots, and last tags the run
``esper.events`` (the events it holds), which marks it complete.

Failure: the first error of the store (unreachable at the start, or later) is raised to the hub,
which reports it once and counts the events as dropped in the run's row; after it the sink
writes nothing more, and ``esper sync RUN`` pushes the whole run from the registry later,
replaying its events through this same class.
"""

from __future__ import annotations

import gzip
import logging
import shlex
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from mlflow import MlflowClient
from mlflow.entities import Metric, RunTag

from esper.leyline.config import TrackingConfig
from esper.leyline.events import TelemetryEvent, TelemetryEventType
from esper.nissa import growth_plot, learning_curves
from esper.nissa.growth_plot import GrowthHistory
from esper.nissa.jsonl_sink import JsonlSink
from esper.nissa.learning_curves import LearningCurves
from esper.nissa.metric_series import MetricMapper, MetricPoint
from esper.nissa.mlflow_run import (
    MLFLOW_STATUS,
    TAG_EVENTS,
    TAG_EXIT_REASON,
    TAG_STATUS,
    create_mlflow_run,
    end_stale_runs,
    to_ms,
)
from esper.nissa.mlflow_store import MlflowStore, MlflowUnavailable
from esper.registry import Registry, RunStatus
from esper.registry.connection import registry_path

logger = logging.getLogger(__name__)

EVENTS_ARTIFACT_DIR = "events"
EVENTS_FILE = "events.jsonl.gz"  # the full event stream, one envelope per line
PREVIEW_FILE = "events.jsonl"  # the same, uncompressed, for the MLflow UI's preview
PREVIEW_LIMIT = 5 * 2**20  # bytes: a longer stream is only in the compressed file


@dataclass(frozen=True)
class MlflowTarget:
    """An opened store and the MLflow experiment a run goes to."""

    store: MlflowStore
    experiment_id: str

    @classmethod
    def open(cls, uri: str | None, experiment: str) -> MlflowTarget:
        """Open the store (see ``locate_store``) and get or create the experiment.

        Raises:
            MlflowUnavailable: the store cannot be reached or written.
        """
        store = MlflowStore.open(uri)
        return cls(store, store.experiment_id(experiment))


class MlflowSink:
    """Writes one esper run to MLflow. ``open_mlflow_sink`` builds it for a run about to start.

    :param registry: where the run's row is read (name, config, provenance) and its MLflow ids
        are recorded
    :param target: the store and experiment, or why they cannot be used (every write then
        raises it, so the hub reports it and counts the events as dropped)
    """

    name = "mlflow"

    def __init__(self, registry: Registry, target: MlflowTarget | MlflowUnavailable, *,
                 flush_points: int = 1000, flush_seconds: float = 2.0) -> None:
        self._registry = registry
        self._failure = target if isinstance(target, MlflowUnavailable) else None
        self._target = None if isinstance(target, MlflowUnavailable) else target
        self._flush_points = flush_points
        self._flush_seconds = flush_seconds
        self._mapper = MetricMapper()
        self._curves = LearningCurves()
        self._growth = GrowthHistory()
        self._pending: list[Metric] = []
        self._flushed_at = time.monotonic()
        self._mlflow_run_id: str | None = None
        self._title = ""
        self._folder: Path | None = None  # temporary: the event archive before its upload
        self._archive: JsonlSink | None = None
        self._events = 0
        self._last: TelemetryEvent | None = None

    @property
    def mlflow_run_id(self) -> str | None:
        """The MLflow run, once the first events have created it."""
        return self._mlflow_run_id

    def write(self, events: list[TelemetryEvent]) -> None:
        """Map ``events`` to metrics and archive them; the first call creates the MLflow run.

        Raises:
            MlflowUnavailable: the store failed now or before (the sink has stopped writing).
        """
        hint = sync_hint(self._registry.path, events[0].run_id)
        if self._failure is not None:
            raise MlflowUnavailable(f"{self._failure.message}; {hint}")
        target = self._target
        try:
            with target.store.reporting(f"record run {events[0].run_id}"):
                if self._mlflow_run_id is None:
                    self._start(target, events[0].run_id)
                self._archive.write(events)
                self._growth.add(events)
                points = self._mapper.points(events)
                self._curves.add(points)
                self._pending += [_metric(p) for p in points]
                self._events += len(events)
                self._last = events[-1]
                if (len(self._pending) >= self._flush_points
                        or time.monotonic() - self._flushed_at >= self._flush_seconds):
                    self._flush()
        except MlflowUnavailable as failure:
            self._failure = failure
            raise MlflowUnavailable(f"{failure.message}; {hint}") from failure

    def close(self) -> None:
        """Send what is pending, upload the archive and the plot, and end the MLflow run with
        the status of RUN_FINISHED (FAILED when the stream has none: the process died)."""
        try:
            if self._mlflow_run_id is not None and self._failure is None:
                with self._target.store.reporting(f"end MLflow run {self._mlflow_run_id}"):
                    self._finish(self._target)
            elif self._mlflow_run_id is not None:
                self._abandon(self._target)
        finally:
            if self._archive is not None:
                self._archive.close()
            if self._folder is not None:
                shutil.rmtree(self._folder, ignore_errors=True)

    def _start(self, target: MlflowTarget, run_id: str) -> None:
        record = self._registry.run(run_id)
        self._folder = Path(tempfile.mkdtemp(prefix=f"esper-mlflow-{run_id}-"))
        self._archive = JsonlSink(self._folder / EVENTS_FILE)
        self._mlflow_run_id = create_mlflow_run(target.store, target.experiment_id, record,
                                                self._registry.path)
        self._title = f"{record.name} ({record.run_id})"
        self._registry.set_mlflow_ids(run_id, self._mlflow_run_id, target.experiment_id)

    def _flush(self) -> None:
        if self._pending:
            self._target.store.client.log_batch(self._mlflow_run_id, metrics=self._pending)
            self._pending = []
        self._flushed_at = time.monotonic()

    def _finish(self, target: MlflowTarget) -> None:
        client, run_id = target.store.client, self._mlflow_run_id
        self._flush()
        last = self._last
        assert last is not None, "the write that started the run set it"
        if last.event_type is TelemetryEventType.RUN_FINISHED:
            status, reason = RunStatus(last.data.status), last.message
        else:  # the process died before RUN_FINISHED (a CRASHED run pushed by esper sync)
            status, reason = RunStatus.CRASHED, "the process died without a status"
        tags = [RunTag(TAG_STATUS, status.value)]
        if reason:
            tags.append(RunTag(TAG_EXIT_REASON, reason))
        client.log_batch(run_id, tags=tags)
        # Ended before the uploads, which may be slow: a run whose end cuts them short (a
        # second signal, the close deadline) still shows how it ended. TAG_EVENTS, set last,
        # marks it complete; without it `esper sync` replaces it.
        client.set_terminated(run_id, MLFLOW_STATUS[status], end_time=to_ms(last.ts))
        self._archive.close()
        client.log_artifact(run_id, str(self._folder / EVENTS_FILE), EVENTS_ARTIFACT_DIR)
        preview = uncompressed_preview(self._folder / EVENTS_FILE, self._folder / PREVIEW_FILE)
        if preview is not None:
            client.log_artifact(run_id, str(preview), EVENTS_ARTIFACT_DIR)
        self._log_run_files(client, last.run_id)
        for figure, artifact in ((self._curves.figure(self._title), learning_curves.ARTIFACT),
                                 (self._growth.figure(self._title), growth_plot.ARTIFACT)):
            if figure is not None:
                client.log_figure(run_id, figure, artifact)
        client.set_tag(run_id, TAG_EVENTS, str(self._events))

    def _log_run_files(self, client: MlflowClient, run_id: str) -> None:
        """The files the registry records as artifacts of run `run_id` (profiler traces, the
        policy checkpoint), each in the folder its artifact name gives ("profiler/x.json" goes
        to profiler/; "policy" to the root); a file no longer on disk is reported, not fatal."""
        for name, path in self._registry.artifacts(run_id).items():
            if not Path(path).is_file():
                logger.warning("artifact %s of run %s not logged to MLflow: %s is gone",
                               name, run_id, path)
                continue
            folder = PurePosixPath(name).parent
            client.log_artifact(self._mlflow_run_id, path,
                                None if folder.name == "" else str(folder))

    def _abandon(self, target: MlflowTarget) -> None:
        """After a failure: try once not to leave the partial MLflow run RUNNING."""
        with target.store.reporting(f"end MLflow run {self._mlflow_run_id}"):
            target.store.client.set_terminated(self._mlflow_run_id, "FAILED")


def open_mlflow_sink(tracking: TrackingConfig, experiment: str, registry: Registry) -> MlflowSink:
    """The MLflow sink of a run about to start: opens the store and the experiment now, and
    terminates the MLflow runs left RUNNING by runs that have ended (see ``end_stale_runs``).

    Never raises for an unreachable store: the sink then fails its writes with the reason (the
    hub reports it once on stderr, the run's row records it, and ``esper sync`` pushes later).

    :param tracking: the experiment's ``tracking`` section (uri, experiment name)
    :param experiment: the esper experiment name, the MLflow experiment's unless
        ``tracking.experiment`` names another
    """
    try:
        target = MlflowTarget.open(tracking.uri, tracking.experiment or experiment)
        with target.store.reporting("terminate the MLflow runs of ended runs"):
            end_stale_runs(target.store, registry)
    except MlflowUnavailable as failure:
        return MlflowSink(registry, failure)
    return MlflowSink(registry, target)


def sync_hint(registry: Path, run_id: str) -> str:
    """Where the run still is and the command that pushes it to MLflow later; ``--registry``
    is named unless ``registry`` is the one ``esper sync`` opens by default here."""
    command = f"esper sync {run_id}"
    if registry.absolute() != registry_path().absolute():
        command += f" --registry {shlex.quote(str(registry.absolute()))}"
    return f"the run is still recorded in {registry}; push it later with: {command}"


def _metric(point: MetricPoint) -> Metric:
    return Metric(point.key, point.value, to_ms(point.ts), point.step)


def uncompressed_preview(archive: Path, target: Path,
                         limit: int = PREVIEW_LIMIT) -> Path | None:
    """`archive` (gzip) decompressed into `target`, or None (and no file) when the stream is
    longer than `limit` bytes: the MLflow UI previews a .jsonl file, not a .gz one."""
    written = 0
    with gzip.open(archive, "rb") as source, open(target, "wb") as out:
        while chunk := source.read(2**16):
            written += len(chunk)
            if written > limit:
                break
            out.write(chunk)
    if written > limit:
        target.unlink()
        return None
    return target
