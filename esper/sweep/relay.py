"""What a sweep worker sends back to the driver, and the registry stand-in that sends it.

Workers never open ``runs.db``. A trial runs inside the ordinary ``recording`` (hub, heartbeat,
end status, RUN_FINISHED last) with a ``RelayRegistry`` in place of the registry: every write
the recording and the runner would make becomes a message to the driver, the one writer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from esper.leyline.events import SinkStats, TelemetryEvent
from esper.nissa.metric_series import MetricPoint
from esper.registry import NewRun, RunRecord, RunStatus


@dataclass(frozen=True)
class Events:
    """A batch of a trial's events, numbered by the worker's hub."""

    run_id: str
    events: list[TelemetryEvent]


@dataclass(frozen=True)
class Metrics:
    """Metric points the worker's recording derived from a batch of the trial's events."""

    run_id: str
    points: list[MetricPoint]


@dataclass(frozen=True)
class Heartbeat:
    run_id: str


@dataclass(frozen=True)
class Artifact:
    """A file the trial wrote (on the worker's machine)."""

    run_id: str
    name: str
    path: str


@dataclass(frozen=True)
class Finished:
    """How the trial ended, sent after its last events."""

    run_id: str
    status: RunStatus
    exit_reason: str | None
    traceback: str | None
    sinks: tuple[SinkStats, ...]  # the worker's: events relayed / dropped


@dataclass(frozen=True)
class TaskDone:
    """The executor's word that the task of a trial is over; `error` when it ended without
    `Finished` (the worker died, or failed before the trial's recording began)."""

    run_id: str
    error: str | None = None
    status: str = "FAILED"  # how the trial ends when the worker never finished it; KILLED when
    # the sweep was stopped before the trial began


Message = Events | Metrics | Heartbeat | Artifact | Finished | TaskDone
Send = Callable[[Message], None]


class RelayRegistry:
    """Stands in for ``Registry`` inside a worker's ``recording``: the run row already exists
    (the driver created it), and every write is sent to the driver instead.

    :param record: the trial's row, as the driver created it
    :param registry_path: the driver's ``runs.db``; artifacts go to ``artifacts/<run id>/``
        beside it, on the worker's machine
    :param send: puts one message on the way to the driver
    """

    def __init__(self, record: RunRecord, registry_path: Path, send: Send) -> None:
        self._record = record
        self.path = registry_path
        self._send = send

    def create_run(self, new: NewRun) -> RunRecord:
        """The row the driver created for this trial (`new` describes the same run)."""
        return self._record

    def write_events(self, events: Sequence[TelemetryEvent]) -> None:
        self._send(Events(self._record.run_id, list(events)))

    def append_metrics(self, run_id: str, points: Iterable[MetricPoint]) -> None:
        self._send(Metrics(run_id, list(points)))

    def heartbeat(self, run_id: str) -> None:
        self._send(Heartbeat(run_id))

    def record_artifact(self, run_id: str, name: str, path: str | Path) -> None:
        self._send(Artifact(run_id, name, str(path)))

    def finish_run(self, run_id: str, status: RunStatus, *, exit_reason: str | None = None,
                   traceback: str | None = None, sinks: Sequence[SinkStats] = ()) -> None:
        self._send(Finished(run_id, status, exit_reason, traceback, tuple(sinks)))
