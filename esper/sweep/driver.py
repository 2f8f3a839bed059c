"""The sweep driver: the parent run, one child run per trial, and the one writer of both stores.

``run_sweep`` plans every trial first (a bad key or value fails before anything runs), creates
the sweep's run (tagged ``esper.kind=sweep``, its config holding the sweep block as run), then
keeps up to ``executor.slots`` trials in flight: each gets its child row when it starts
(``parent_run_id`` and ``group_id`` = the sweep's run id, tags ``esper.trial``,
``esper.replicate`` and ``sweep.<key>`` = its value) and its records are written here as the
worker sends them. A failed trial does not stop the sweep.

``resume_sweep`` re-plans from the sweep's run and reruns, as new child runs of the same
parent, every trial whose latest run is not FINISHED (failed, killed, crashed, never started).
It is refused while the sweep's driver lives (paused or not: ``esper.registry.runs``), and the
resuming driver takes the sweep's run over (RUNNING, its own pid), so a second resume waits.

Ctrl-C (SIGINT) or SIGTERM: no new trial starts, the trials in flight are interrupted and end
KILLED (a worker that does not answer within ``grace`` seconds is ended KILLED by the driver),
the sweep's run ends KILLED, then KeyboardInterrupt / ``RunTerminated`` is raised.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING

from esper.experiment import spec_to_dict, stored_spec
from esper.experiment.runner import judge_run, run_tags
from esper.leyline.config import ExperimentSpec
from esper.nissa.recording import RunTerminated
from esper.registry import NewRun, Registry, RunRecord, RunStatus
from esper.registry.errors import RunInUse
from esper.registry.heartbeat import Heartbeat
from esper.registry.records import KIND_TAG, RunKind
from esper.registry.refs import check_name
from esper.sweep.errors import SweepError
from esper.sweep.executor import Executor
from esper.sweep.plan import Trial, plan_trials
from esper.sweep.ranking import (PARAM_TAG, TAG_REPLICATE, TAG_SWEEP, TAG_TRIAL,
                                 Ranking, latest_per_trial, rank_sweep, sweep_config,
                                 trial_runs)
from esper.sweep.relay import TaskDone
from esper.sweep.trial_writer import TrialWriter
from esper.sweep.worker import TrialTask

if TYPE_CHECKING:
    from esper.sweep.mlflow_parent import ParentRun

_POLL = 0.2  # seconds the driver waits for messages per turn
Progress = Callable[[str], None]  # told one line as each trial starts and ends


def _silent(message: str) -> None:
    """No progress."""


@dataclass(frozen=True)
class SweepResult:
    """A sweep that ran to its end (every trial planned has run, finished or not)."""

    sweep: RunRecord  # the parent run, ended
    trials: tuple[RunRecord, ...]  # the child runs of this invocation, in start order
    ranking: Ranking  # every trial of the sweep, best first

    @property
    def failed(self) -> tuple[RunRecord, ...]:
        """Trial runs of this invocation that did not finish."""
        return tuple(r for r in self.trials if r.status is not RunStatus.FINISHED)


def run_sweep(spec: ExperimentSpec, executor: Executor, *, registry: str | os.PathLike[str] | None
              = None, spec_path: str | None = None, name: str | None = None,
              progress: Progress = _silent) -> SweepResult:
    """Run every trial of the sweep of `spec` on `executor` (see the module docstring);
    `progress` is told as each trial starts and ends.

    Raises:
        SweepError: the sweep is badly specified (before anything runs).
        KeyboardInterrupt, RunTerminated: the sweep was stopped (everything is recorded).
    """
    check_name(name)  # before anything is planned or recorded
    trials = plan_trials(spec)
    with Registry.open(registry) as runs_db:
        parent = runs_db.create_run(NewRun(
            experiment=spec.name, config=spec_to_dict(spec), seed=spec.seed, name=name,
            spec_path=spec_path, device=spec.training.device,
            tags={**spec.tracking.tags, KIND_TAG: RunKind.SWEEP.value}, notes=spec.description))
        return _drive(runs_db, spec, parent, trials, executor, progress)


def resume_sweep(ref: str, executor: Executor, *,
                 registry: str | os.PathLike[str] | None = None,
                 mlflow: bool | None = None, progress: Progress = _silent) -> SweepResult:
    """Rerun the trials of sweep `ref` whose latest run is not FINISHED.

    :param mlflow: False records to the registry only; None: as the sweep did
    Raises:
        RunNotFound, AmbiguousRun: `ref` names no run, or several.
        SweepError: `ref` is not a sweep, or it is still running.
    """
    with Registry.open(registry, create=False) as runs_db:
        parent = runs_db.resolve(ref)
        sweep_config(parent)  # a sweep, or a clear error
        if parent.status is RunStatus.RUNNING:
            raise _still_running(parent)
        spec = stored_spec(parent.config,
                              ("tracking.mlflow=false",) if mlflow is False else ())
        finished = {key for key, run in latest_per_trial(trial_runs(runs_db, parent.run_id))
                    .items() if run.status is RunStatus.FINISHED}
        todo = [t for t in plan_trials(spec) if (t.index, t.replicate) not in finished]
        if not todo:  # every trial finished: the sweep's record (its end, duration) stays
            executor.close()
            return SweepResult(parent, (), rank_sweep(runs_db, parent.run_id))
        try:  # this driver owns the sweep now: a second --resume is refused while it lives
            parent = runs_db.reopen_run(parent.run_id)
        except RunInUse as busy:  # another --resume took it over since the check above
            executor.close()
            raise _still_running(busy.run) from None
        return _drive(runs_db, spec, parent, todo, executor, progress)


def _still_running(sweep: RunRecord) -> SweepError:
    return SweepError(f"sweep {sweep.name} ({sweep.run_id}) is still running (pid {sweep.pid} "
                      f"on {sweep.host}); resume it once it has ended")


def _drive(runs_db: Registry, spec: ExperimentSpec, parent: RunRecord, trials: list[Trial],
           executor: Executor, progress: Progress) -> SweepResult:
    mlflow: ParentRun | None = None
    if spec.tracking.mlflow:
        from esper.sweep.mlflow_parent import ParentRun  # imports mlflow: ~3 s

        mlflow = ParentRun.open(spec.tracking, spec.name, runs_db, parent)
    heartbeat = Heartbeat(lambda: runs_db.heartbeat(parent.run_id)).start()
    dispatcher = _Dispatcher(runs_db, parent, mlflow, executor, progress)
    status, reason, tb = RunStatus.FINISHED, None, None
    try:
        with _stop_signals() as stop:
            dispatcher.run(trials, stop)
        if stop.signum is not None:
            status, reason = RunStatus.KILLED, signal.Signals(stop.signum).name
            raise KeyboardInterrupt if stop.signum == signal.SIGINT else RunTerminated(stop.signum)
        failed = [r for r in dispatcher.records if r.status is not RunStatus.FINISHED]
        if failed:
            reason = (f"{len(failed)} of {len(dispatcher.records)} trials did not finish: "
                      + ", ".join(f"{r.name} {r.status.value}" for r in failed))
    except (KeyboardInterrupt, RunTerminated):
        status, reason = RunStatus.KILLED, reason or "SIGINT"
        raise
    except BaseException as error:
        status, reason, tb = RunStatus.FAILED, f"{type(error).__name__}: {error}", \
            traceback.format_exc()
        raise
    finally:
        executor.close()
        heartbeat.stop()
        ended = runs_db.finish_run(parent.run_id, status, exit_reason=reason, traceback=tb)
        ranking = rank_sweep(runs_db, parent.run_id)
        if mlflow is not None:
            best = ranking.trials[0] if ranking.trials else None
            mlflow.end(ended, ranking.metric, None if best is None or not best.ranked
                       else (best.runs[0].run_id, best.value))
    return SweepResult(ended, tuple(dispatcher.records), ranking)


class _Stop:
    """Set by the SIGINT / SIGTERM handler: the signal that asked the sweep to stop."""

    signum: int | None = None


@contextmanager
def _stop_signals() -> Iterator[_Stop]:
    """While the block runs, SIGINT and SIGTERM only set the flag (main thread only): the
    driver is never interrupted half-way through writing a record."""
    stop = _Stop()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.signum = stop.signum or signum

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


class _Dispatcher:
    """Keeps the executor's slots busy and writes what comes back, trial by trial."""

    def __init__(self, runs_db: Registry, parent: RunRecord, mlflow: ParentRun | None,
                 executor: Executor, progress: Progress, grace: float = 60.0) -> None:
        self._db = runs_db
        self._progress = progress
        self._total = 0  # trials this invocation runs
        self._ended = 0
        self._parent = parent
        self._mlflow = mlflow
        self._executor = executor
        self._grace = grace
        self._writers: dict[str, tuple[Trial, TrialWriter]] = {}
        self._records: dict[str, RunRecord] = {}  # trial runs of this invocation, by id

    @property
    def records(self) -> list[RunRecord]:
        """The trial runs of this invocation, in start order, as they are now."""
        return list(self._records.values())

    def run(self, trials: list[Trial], stop: _Stop) -> None:
        waiting = deque(trials)
        self._total = len(trials)
        while (waiting and stop.signum is None) or self._writers:
            if stop.signum is not None:
                self._stop_in_flight()
                return
            while waiting and len(self._writers) < self._executor.slots:
                self._start(waiting.popleft())
            self._handle(self._executor.receive(_POLL))

    def _start(self, trial: Trial) -> None:
        spec, parent = trial.spec, self._parent
        tags = {**run_tags(spec), TAG_SWEEP: parent.run_id, TAG_TRIAL: str(trial.index),
                TAG_REPLICATE: str(trial.replicate),
                **{PARAM_TAG + k: json.dumps(v) for k, v in trial.params.items()}}
        if self._mlflow is not None and self._mlflow.mlflow_run_id is not None:
            from esper.sweep.mlflow_parent import TAG_PARENT

            tags[TAG_PARENT] = self._mlflow.mlflow_run_id
        record = self._db.create_run(NewRun(
            experiment=spec.name, config=spec_to_dict(spec), seed=spec.seed,
            name=f"{parent.name}-{trial.label}", spec_path=parent.spec_path,
            device=spec.training.device, tags=tags, notes=spec.description,
            group_id=parent.run_id, parent_run_id=parent.run_id))
        sink = None if self._mlflow is None else self._mlflow.trial_sink()
        self._writers[record.run_id] = (trial, TrialWriter(self._db, record, sink))
        self._records[record.run_id] = record
        self._executor.submit(TrialTask(spec, record, self._db.path))
        self._progress(f"started trial {trial.label}: run {record.name} ({record.run_id}); "
                       f"{len(self._writers)} in flight, {self._ended}/{self._total} ended")

    def _handle(self, messages: list) -> None:
        for message in messages:
            trial, writer = self._writers[message.run_id]
            if not isinstance(message, TaskDone):
                writer.handle(message)
                continue
            writer.abandon(RunStatus(message.status),
                           message.error or "the worker ended without a status")
            del self._writers[message.run_id]
            record = writer.record
            if record.status is RunStatus.FINISHED:
                store = None if self._mlflow is None else self._mlflow.store
                record = judge_run(trial.spec, self._db, record.run_id, mlflow=store)[1]
            self._records[record.run_id] = record
            self._ended += 1
            took = "" if record.duration is None else f" in {record.duration:.0f} s"
            self._progress(f"[{self._ended}/{self._total}] trial {trial.label} "
                           f"{record.status.value}{took}: run {record.name} ({record.run_id})")

    def _stop_in_flight(self) -> None:
        """Interrupt the trials in flight, write what they send until they end (or the grace
        period is over), and end the rest KILLED."""
        self._executor.interrupt()
        deadline = time.monotonic() + self._grace
        while self._writers and time.monotonic() < deadline:
            self._handle(self._executor.receive(_POLL))
        for run_id, (_, writer) in list(self._writers.items()):
            writer.abandon(RunStatus.KILLED, "the sweep was stopped; the trial did not answer")
            self._records[run_id] = writer.record
        self._writers.clear()
