"""The driver's side of one trial: its relayed records written to runs.db and MLflow.

The driver is the only writer: it runs one ``TrialWriter`` per trial in flight, on its own
thread, in the order the worker sent. The worker's hub numbered the events and ends the stream
with RUN_FINISHED; when a worker never says how the trial ended (it died, or it ignored the
interrupt), ``abandon`` writes that last event and the end status itself.
"""

from __future__ import annotations

import time
import traceback as tb
from typing import TYPE_CHECKING

from esper.leyline.events import (RunFinishedPayload, Severity, SinkStats, TelemetryEvent,
                                  TelemetryEventType)
from esper.registry import Registry, RunRecord, RunStatus
from esper.sweep.relay import Artifact, Events, Finished, Heartbeat, Message, Metrics

if TYPE_CHECKING:
    from esper.nissa.mlflow_sink import MlflowSink


class TrialWriter:
    """Writes the records of the trial run `record` as they arrive.

    :param mlflow: the trial's MLflow sink, None without MLflow; its failures are counted as
        dropped events of the ``mlflow`` sink in the run's row (``esper sync`` pushes later)
    """

    def __init__(self, registry: Registry, record: RunRecord, mlflow: MlflowSink | None) -> None:
        self.record = record
        self._registry = registry
        self._mlflow = mlflow
        self._mlflow_stats = SinkStats("mlflow", 0, 0, 0, None)
        self._next_seq = 0
        self.finished: Finished | None = None

    @property
    def run_id(self) -> str:
        return self.record.run_id

    def handle(self, message: Message) -> None:
        """Write one message of the worker (events, metrics, heartbeat, artifact, end
        status)."""
        if isinstance(message, Events):
            self._write(message.events)
        elif isinstance(message, Metrics):
            self._registry.append_metrics(self.run_id, message.points)
        elif isinstance(message, Heartbeat):
            self._registry.heartbeat(self.run_id)
        elif isinstance(message, Artifact):
            self._registry.record_artifact(self.run_id, message.name, message.path)
        elif isinstance(message, Finished):
            self._end(message)

    def abandon(self, status: RunStatus, reason: str) -> None:
        """End a trial whose worker did not: RUN_FINISHED with `status`, then the row."""
        if self.finished is not None:
            return
        payload = RunFinishedPayload(status.value, self._next_seq, 0)
        self._write([TelemetryEvent(self.run_id, self._next_seq, time.time(),
                                    TelemetryEventType.RUN_FINISHED, Severity.INFO, None, None,
                                    None, None, None, reason, payload)])
        self._end(Finished(self.run_id, status, reason, None, ()))

    def _write(self, events: list[TelemetryEvent]) -> None:
        self._registry.write_events(events)
        self._next_seq = events[-1].seq + 1
        if self._mlflow is not None:
            self._to_mlflow(events)

    def _to_mlflow(self, events: list[TelemetryEvent]) -> None:
        from esper.nissa.mlflow_store import MlflowUnavailable

        s = self._mlflow_stats
        try:
            self._mlflow.write(events)
        except MlflowUnavailable as error:
            self._mlflow_stats = SinkStats(s.name, s.written, s.dropped + len(events),
                                           s.failures + 1, error.message)
        else:
            self._mlflow_stats = SinkStats(s.name, s.written + len(events), s.dropped,
                                           s.failures, s.last_error)

    def _end(self, finished: Finished) -> None:
        sinks = finished.sinks
        if self._mlflow is not None:
            try:
                self._mlflow.close()
            except Exception as error:  # reported in the row like a failed write
                s = self._mlflow_stats
                reason = "".join(tb.format_exception_only(error)).strip()
                self._mlflow_stats = SinkStats(s.name, s.written, s.dropped, s.failures + 1,
                                               reason)
            sinks = (*sinks, self._mlflow_stats)
        self.record = self._registry.finish_run(
            self.run_id, finished.status, exit_reason=finished.exit_reason,
            traceback=finished.traceback, sinks=sinks)
        self.finished = finished
