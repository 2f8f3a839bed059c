"""Typed records the registry reads and writes: run status, a run row, a request for a new run."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from esper.leyline.events import SinkStats


#: The tag that marks a sweep's run (set by ``esper.sweep``: ``esper.kind=sweep``), and the tag
#: of a regression suite's runs (set by ``esper.regress``: ``esper.suite=<suite>``). Their one
#: home is here, where ``RunRecord.kind`` reads them: the registry imports no other esper package.
KIND_TAG = "esper.kind"
SUITE_TAG = "esper.suite"
RERUN_TAG = "esper.rerun_of"  # on a run made by ``esper rerun``: the id of the run it reran


class RunKind(Enum):
    """What made a run: ``esper run`` (RUN, a replicate group's members included), a sweep's
    run (SWEEP), one of its trials (TRIAL: a child run) or ``esper regress`` (REGRESSION)."""

    RUN = "run"
    SWEEP = "sweep"
    TRIAL = "trial"
    REGRESSION = "regression"


class RunStatus(Enum):
    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"  # an exception ended the run; exit_reason and traceback say which
    KILLED = "KILLED"  # SIGINT or SIGTERM; events were flushed first
    CRASHED = "CRASHED"  # derived on read: RUNNING, but the process is gone or its heartbeat stale


@dataclass(frozen=True)
class NewRun:
    """What the caller knows about a run before it starts; the registry adds the rest."""

    experiment: str  # experiment name
    config: Mapping[str, Any]  # the resolved config, JSON-serialisable
    seed: int  # master seed
    name: str | None = None  # None: "<experiment>-<n>", n = runs of this experiment so far + 1
    spec_path: str | None = None  # the experiment file as given; its sha256 is recorded
    device: str = "cpu"
    tags: Mapping[str, str] = field(default_factory=dict)
    notes: str = ""
    group_id: str | None = None  # replicates / sweep members share it
    parent_run_id: str | None = None


@dataclass(frozen=True)
class RunRecord:
    """One row of the ``runs`` table; times are unix seconds."""

    run_id: str  # 12 hex characters
    name: str
    experiment: str
    status: RunStatus  # CRASHED is derived, never stored
    config: Mapping[str, Any]
    config_sha256: str  # of the canonical JSON of config
    spec_path: str | None
    spec_sha256: str | None  # of the experiment file's bytes; None: no file
    exit_reason: str | None  # FAILED: "ExceptionClass: message"; KILLED: the signal
    traceback: str | None
    created_at: float
    started_at: float
    ended_at: float | None
    heartbeat_at: float | None
    pid: int
    host: str
    user: str | None
    git_commit: str | None  # None: not run inside a git work tree
    git_dirty: bool | None  # tracked files modified; None: not a git work tree
    esper_version: str
    torch_version: str | None  # None: torch not installed
    python_version: str
    seed: int
    device: str
    group_id: str | None
    parent_run_id: str | None
    mlflow_run_id: str | None
    mlflow_experiment_id: str | None
    tags: Mapping[str, str]
    notes: str
    event_count: int
    sinks: tuple[SinkStats, ...]  # per sink: written / dropped / failures (set at the end)

    @property
    def duration(self) -> float | None:
        """Seconds from start to end; None while running or crashed (end unknown)."""
        return None if self.ended_at is None else self.ended_at - self.started_at

    @property
    def kind(self) -> RunKind:
        """SWEEP by its tag, TRIAL when it has a parent run, REGRESSION by its suite tag."""
        if self.tags.get(KIND_TAG) == RunKind.SWEEP.value:
            return RunKind.SWEEP
        if self.parent_run_id is not None:
            return RunKind.TRIAL
        return RunKind.REGRESSION if SUITE_TAG in self.tags else RunKind.RUN

    @property
    def events_dropped(self) -> int:
        return sum(s.dropped for s in self.sinks)


@dataclass(frozen=True)
class MetricSummary:
    """One scalar series of the ``metrics`` table, summarised."""

    key: str  # namespaced, e.g. ppo/approx_kl
    count: int
    first_step: int
    last_step: int
    last: float  # NaN when the last point was NaN
    min: float  # of the points that are not NaN; NaN when all are
    max: float


@dataclass(frozen=True)
class RunSummary:
    """Everything ``esper show`` prints about one run."""

    run: RunRecord
    event_counts: tuple[tuple[str, int], ...]  # (event type, count), most frequent first
    metrics: tuple[MetricSummary, ...]
