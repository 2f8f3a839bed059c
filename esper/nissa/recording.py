"""Recording one run: the registry row, the telemetry hub, the heartbeat and the end status.

Wrap the training of a run in ``recording``::

    registry = Registry.open(path)
    new = NewRun(experiment=spec.name, config=config_dict, seed=spec.seed, spec_path=str(path))
    with recording(registry, new, sinks=[mlflow_sink]) as rec:
        rec.hub.emit(TelemetryEventType.TRAINING_STARTED, TrainingStartedPayload(...))
        train(spec, rec.hub)
    print(registry.run(rec.run_id).status)

How the run ends (docs/architecture.md §8, reliability):
- the block returns: FINISHED;
- SIGINT (KeyboardInterrupt) or SIGTERM (``RunTerminated``, raised by the handler installed
  here): KILLED, with every event emitted before the signal written first; the exception is
  re-raised, so the process still ends the way the signal asks (SIGTERM exits with 143);
- any other exception: FAILED, with the exception class, message and traceback stored, then
  re-raised;
- SIGKILL, OOM, power loss: nothing runs; readers show the run as CRASHED (dead pid or stale
  heartbeat).
In every case a RUN_FINISHED event is the run's last event and the row records, per sink, the
events written and dropped. Two sinks are always there: the registry's events and its
``metrics`` table (the scalar series, derived from the events as they pass).

The end is bounded: the sinks get ``close_timeout`` seconds in all to write what is left (an
MLflow store that hangs during its upload included), and a further SIGINT or SIGTERM while
they write cuts that to ``HURRY_GRACE`` seconds; what a sink has not started to write by then
is counted as dropped, and the end status is written either way.
"""

from __future__ import annotations

import logging
import signal
import sqlite3
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

from esper.leyline.events import RunFinishedPayload, SinkStats, TelemetryEventType
from esper.nissa.hub import Sink, TelemetryHub, check_sink_names
from esper.nissa.metrics_sink import MetricsSink
from esper.nissa.registry_sink import RegistrySink
from esper.registry import NewRun, Registry, RegistryError, RunRecord, RunStatus
from esper.registry.errors import RegistryGone
from esper.registry.heartbeat import DEFAULT_INTERVAL, Heartbeat

logger = logging.getLogger(__name__)

_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_EVENTS_SINK = "registry"  # the sink writing the run's events to its registry
HURRY_GRACE = 2.0  # seconds the sinks still get once a second signal asks to end now


def killed_run(interrupt: KeyboardInterrupt) -> RunRecord | None:
    """The run a Ctrl-C ended and stored as KILLED, when the interrupt came through
    ``recording`` (the same exception goes on: Python exits with the SIGINT status only for a
    KeyboardInterrupt itself, not for a subclass)."""
    return getattr(interrupt, "_esper_killed_run", None)


class RunTerminated(SystemExit):
    """Raised in the main thread when SIGTERM arrives inside ``recording``.

    A ``SystemExit`` (exit status 128 + SIGTERM = 143), so that ``except Exception`` in the
    training code does not swallow it and an uncaught one ends the process without a traceback.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signum = signum


@dataclass(frozen=True)
class Recording:
    """A run being recorded: emit its events through ``hub``."""

    run: RunRecord  # the row as created (status RUNNING)
    hub: TelemetryHub
    registry: Registry

    @property
    def run_id(self) -> str:
        return self.run.run_id


@contextmanager
def recording(
    registry: Registry,
    new: NewRun,
    *,
    sinks: Sequence[Sink] = (),
    heartbeat_interval: float = DEFAULT_INTERVAL,
    close_timeout: float = 60.0,
) -> Iterator[Recording]:
    """Create a RUNNING run, record its events while the block runs, and store how it ended.

    :param registry: where the run, its events and its metrics go (their sinks are added
        here)
    :param new: what the run is (experiment, resolved config, seed, ...)
    :param sinks: further sinks (MLflow, JSONL); their drops are reported like the registry's
    :param heartbeat_interval: seconds between heartbeats
    :param close_timeout: seconds the end may wait for the sinks (final flush and close
        together); events a sink has not started to write by then are counted as dropped
    SIGINT and SIGTERM handlers are installed (main thread only) while the block runs; a
    further signal while the end waits for the sinks cuts the wait to ``HURRY_GRACE``
    seconds, and the end status is always written.
    """
    all_sinks = [RegistrySink(registry, _EVENTS_SINK), MetricsSink(registry), *sinks]
    check_sink_names(all_sinks)  # before the row exists: a bad sink leaves no RUNNING run behind
    run = registry.create_run(new)
    hub = TelemetryHub(run.run_id, all_sinks)
    heartbeat = Heartbeat(lambda: registry.heartbeat(run.run_id), heartbeat_interval).start()
    rec = Recording(run, hub, registry)
    previous = _install_handlers()
    try:
        yield rec
    except KeyboardInterrupt as interrupt:
        _end(rec, heartbeat, close_timeout, RunStatus.KILLED, "SIGINT")
        interrupt._esper_killed_run = run  # type: ignore[attr-defined]  # see killed_run
        raise
    except RunTerminated as exc:
        _end(rec, heartbeat, close_timeout, RunStatus.KILLED, signal.Signals(exc.signum).name)
        raise
    except BaseException as exc:
        reason = f"{type(exc).__name__}: {exc}"
        _end(rec, heartbeat, close_timeout, RunStatus.FAILED, reason, traceback.format_exc())
        raise
    else:
        _end(rec, heartbeat, close_timeout, RunStatus.FINISHED)
    finally:
        _restore_handlers(previous)


def _end(
    rec: Recording,
    heartbeat: Heartbeat,
    close_timeout: float,
    status: RunStatus,
    exit_reason: str | None = None,
    tb: str | None = None,
) -> None:
    # The flush and the close share close_timeout: a stuck sink delays the end once, and the
    # other sinks still have half of it to write RUN_FINISHED.
    ending = _Ending(time.monotonic() + close_timeout)
    try:
        if not rec.hub.closed:  # the block may have closed it itself
            ending.wait(lambda left: rec.hub.flush(min(left, close_timeout / 2)))
            before = rec.hub.stats()
            rec.hub.emit(
                TelemetryEventType.RUN_FINISHED,
                RunFinishedPayload(status.value, before.emitted, before.dropped),
                message=exit_reason or "",
            )
        if not ending.wait(lambda left: rec.hub.close(left)):
            rec.hub.close(ending.left())  # cut short: the sinks get what is left of the grace
        final = rec.hub.stats()
    finally:
        _ignore_signals()  # until the caller's handlers are restored: the status is written
        heartbeat.stop()
    events = next(s for s in final.sinks if s.name == _EVENTS_SINK)
    lost = (f"{events.dropped} events not written to registry {rec.registry.path}: "
            f"{events.last_error}") if events.failures else None
    unrecorded = lost is not None and status is RunStatus.FINISHED
    if unrecorded:  # a run whose events are not all recorded did not finish
        status, exit_reason = RunStatus.FAILED, lost
    _store_end(rec, status, exit_reason, tb, final.sinks)
    if unrecorded:
        raise RegistryError(f"run {rec.run_id} ({rec.run.name}) recorded as FAILED: {lost}")


def _store_end(rec: Recording, status: RunStatus, exit_reason: str | None, tb: str | None,
               sinks: Sequence[SinkStats]) -> None:
    """Write the run's end status; when the registry cannot take it, raise a RegistryError
    that says what became of the run (shown as CRASHED, or saved from a deleted registry)."""
    run = f"run {rec.run_id} ({rec.run.name}) ended {status.value}"
    def finish(registry: Registry) -> None:  # the run's registry, a sweep's relay, a rescue
        registry.finish_run(rec.run_id, status, exit_reason=exit_reason, traceback=tb,
                            sinks=sinks)

    try:
        finish(rec.registry)
    except RegistryGone as error:
        raise RegistryGone(f"{error.message}; {run}: {_rescue(rec, finish)}") from None
    except RegistryError as error:
        raise RegistryError(f"{run}, but the registry could not record it, so it shows as "
                            f"CRASHED: {error.message}") from None


def _rescue(rec: Recording, finish: Callable[[Registry], object]) -> str:
    """Save the registry the run wrote to, deleted or replaced since, beside the path it had,
    and ``finish`` the run there."""
    path = rec.registry.path
    target = path.with_name(f"{path.stem}-rescued-{rec.run_id}{path.suffix}")
    try:
        rec.registry.save_copy(target)
        with Registry.open(target, create=False) as rescued:
            finish(rescued)
    except (sqlite3.Error, OSError, RegistryError) as error:
        return f"its record and events are lost ({error})"
    return (f"its record and events were saved to {target} (esper show {rec.run_id} "
            f"--registry {target})")


class _Hurry(Exception):
    """Raised by a signal that arrives while the end of a run waits for its sinks."""


class _Ending:
    """The end of a run: its deadline, cut to ``HURRY_GRACE`` by a further SIGINT or SIGTERM.

    The signal handler raises only inside ``wait`` (a wait for the sinks, safe to leave
    early), never while an event is emitted or the status written; elsewhere it only moves
    the deadline.
    """

    def __init__(self, deadline: float) -> None:
        self._deadline = deadline
        self._waiting = False
        if threading.current_thread() is threading.main_thread():
            for s in _SIGNALS:
                signal.signal(s, self._on_signal)

    def left(self) -> float:
        """Seconds until the deadline (0 once passed)."""
        return max(0.0, self._deadline - time.monotonic())

    def wait(self, waiting: Callable[[float], object]) -> bool:
        """Call ``waiting(seconds left)``; False when a signal cut it short."""
        self._waiting = True
        try:  # no finally: a handler running there could raise _Hurry past the except
            waiting(self.left())
            self._waiting = False
        except _Hurry:
            return False
        except BaseException:
            self._waiting = False
            raise
        return True

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._deadline - time.monotonic() > HURRY_GRACE:
            logger.warning("%s: ending now; telemetry not yet written within %g s is counted "
                           "as dropped", signal.Signals(signum).name, HURRY_GRACE)
            self._deadline = time.monotonic() + HURRY_GRACE
        if self._waiting:
            self._waiting = False
            raise _Hurry


_Handlers = dict[int, object]


def _install_handlers() -> _Handlers | None:
    """SIGINT -> KeyboardInterrupt, SIGTERM -> RunTerminated; None off the main thread, where
    Python cannot install handlers (the caller's own handling applies)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    previous: _Handlers = {s: signal.getsignal(s) for s in _SIGNALS}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_terminated)
    return previous


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise RunTerminated(signum)


def _ignore_signals() -> None:
    if threading.current_thread() is threading.main_thread():
        for s in _SIGNALS:
            signal.signal(s, signal.SIG_IGN)


def _restore_handlers(previous: _Handlers | None) -> None:
    if previous is not None:
        for s, handler in previous.items():
            signal.signal(s, handler)  # type: ignore[arg-type]
