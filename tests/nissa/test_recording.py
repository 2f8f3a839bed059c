"""recording(): a run ends FINISHED, FAILED or KILLED with every event written first."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import pytest

from esper.leyline.events import (
    BatchCompletedPayload,
    EpochCompletedPayload,
    RunFinishedPayload,
    TelemetryEvent,
    TelemetryEventType,
)
from esper.leyline.rewards import RewardComponents
from esper.nissa.recording import RunTerminated, recording
from esper.registry import NewRun, Registry, RunStatus

BATCH = TelemetryEventType.BATCH_COMPLETED
EPOCH = TelemetryEventType.EPOCH_COMPLETED


@pytest.fixture
def registry(tmp_path: Path):
    with Registry.open(tmp_path / "runs.db") as opened:
        yield opened


def new_run() -> NewRun:
    return NewRun(experiment="rec", config={"x": 1}, seed=3)


def emit(rec, n: int) -> None:
    for i in range(n):
        rec.hub.emit(BATCH, BatchCompletedPayload(float(i), 0.0, i), batch=i)


class FailingSink:
    name = "broken"

    def write(self, events: list[TelemetryEvent]) -> None:
        raise ConnectionError("mlflow unreachable")

    def close(self) -> None:
        pass


def test_a_run_that_returns_is_finished_with_run_finished_as_its_last_event(registry):
    with recording(registry, new_run()) as rec:
        emit(rec, 250)
    run = registry.run(rec.run_id)
    assert run.status is RunStatus.FINISHED and run.exit_reason is None
    events = list(registry.events(rec.run_id))
    assert [e.seq for e in events] == list(range(251)) and run.event_count == 251
    assert events[-1].event_type is TelemetryEventType.RUN_FINISHED
    assert events[-1].data == RunFinishedPayload("FINISHED", 250, 0)
    assert [(s.name, s.written, s.dropped) for s in run.sinks] == [("registry", 251, 0),
                                                                    ("metrics", 251, 0)]
    accuracy = registry.query("SELECT step, value FROM metrics WHERE run_id = ? "
                             "AND key = 'episode/val_accuracy' ORDER BY step", [rec.run_id])
    assert accuracy == [(i, float(i)) for i in range(250)]  # derived as the events passed


def test_events_the_metric_mapping_refuses_cost_the_metrics_sink_not_the_run(registry):
    """An epoch before TRAINING_STARTED has no step: the metrics sink fails, reported like any
    failing sink, and every event and the end status are recorded all the same."""
    with recording(registry, new_run()) as rec:
        rec.hub.emit(EPOCH, EpochCompletedPayload(2.0, 40.0, 1.5, 50.0, 1, 0, (), "WAIT", None,
                                                  True, 0.0, RewardComponents()),
                     batch=0, env_id=0, epoch=0)
    run = registry.run(rec.run_id)
    assert run.status is RunStatus.FINISHED and run.event_count == 2
    metrics = {s.name: s for s in run.sinks}["metrics"]
    assert metrics.failures == 1 and "TRAINING_STARTED" in metrics.last_error
    assert registry.query("SELECT count(*) FROM metrics WHERE run_id = ?", [rec.run_id]) == [(0,)]


def test_an_exception_ends_failed_with_its_traceback_and_is_re_raised(registry):
    with pytest.raises(ZeroDivisionError):
        with recording(registry, new_run()) as rec:
            emit(rec, 10)
            1 / 0  # noqa: B018
    run = registry.run(rec.run_id)
    assert run.status is RunStatus.FAILED
    assert run.exit_reason == "ZeroDivisionError: division by zero"
    assert run.traceback.startswith("Traceback (most recent call last):")
    assert "1 / 0" in run.traceback
    assert run.event_count == 11  # the 10 events before the exception, then RUN_FINISHED


def test_keyboard_interrupt_ends_killed(registry):
    with pytest.raises(KeyboardInterrupt):
        with recording(registry, new_run()) as rec:
            emit(rec, 5)
            raise KeyboardInterrupt
    run = registry.run(rec.run_id)
    assert (run.status, run.exit_reason, run.event_count) == (RunStatus.KILLED, "SIGINT", 6)


def test_sigterm_in_the_main_thread_ends_killed_and_exits_143(registry):
    with pytest.raises(RunTerminated) as ended:
        with recording(registry, new_run()) as rec:
            emit(rec, 5)
            signal.raise_signal(signal.SIGTERM)
            time.sleep(5)  # not reached: the handler raises at once
    assert ended.value.code == 143
    run = registry.run(rec.run_id)
    assert (run.status, run.exit_reason, run.event_count) == (RunStatus.KILLED, "SIGTERM", 6)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers restored


def test_drops_of_a_failing_sink_are_stored_in_the_run_by_sink_name(registry):
    with recording(registry, new_run(), sinks=[FailingSink()]) as rec:
        emit(rec, 20)
    run = registry.run(rec.run_id)
    by_name = {s.name: s for s in run.sinks}
    assert by_name["registry"].dropped == 0 and by_name["registry"].written == 21
    assert by_name["broken"].dropped == 21  # RUN_FINISHED too
    assert by_name["broken"].last_error == "ConnectionError: mlflow unreachable"
    assert run.events_dropped == 21
    finished = list(registry.events(rec.run_id, types=[TelemetryEventType.RUN_FINISHED]))
    assert finished[0].data.events_dropped == 20  # counted before RUN_FINISHED was emitted


def test_the_heartbeat_advances_while_the_run_lives(registry):
    with recording(registry, new_run(), heartbeat_interval=0.05) as rec:
        first = registry.run(rec.run_id).heartbeat_at
        deadline = time.monotonic() + 10
        while registry.run(rec.run_id).heartbeat_at == first and time.monotonic() < deadline:
            time.sleep(0.02)
        assert registry.run(rec.run_id).heartbeat_at > first


def test_recording_off_the_main_thread_leaves_signal_handlers_alone(registry):
    before = signal.getsignal(signal.SIGTERM)
    result = {}

    def body() -> None:
        with recording(registry, new_run()) as rec:
            emit(rec, 3)
        result["run_id"] = rec.run_id

    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    assert registry.run(result["run_id"]).status is RunStatus.FINISHED
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_block_that_closes_the_hub_itself_still_ends_finished(registry):
    with recording(registry, new_run()) as rec:
        emit(rec, 5)
        rec.hub.close()
    run = registry.run(rec.run_id)
    assert run.status is RunStatus.FINISHED and run.event_count == 5


def test_sinks_with_one_name_are_refused_before_the_run_row_is_written(registry):
    class Named(FailingSink):
        name = "metrics"  # the name of the sink recording() adds itself

    with pytest.raises(ValueError, match="sink names must be unique"):
        with recording(registry, new_run(), sinks=[Named()]):
            pass
    assert registry.runs() == []


def test_a_stuck_sink_delays_the_end_by_close_timeout_once_not_twice(registry):
    release = threading.Event()

    class Stuck(FailingSink):
        name = "stuck"

        def write(self, events: list[TelemetryEvent]) -> None:
            release.wait()

    started = time.monotonic()
    with recording(registry, new_run(), sinks=[Stuck()], close_timeout=1.0) as rec:
        emit(rec, 3)
    took = time.monotonic() - started
    release.set()
    assert took < 1.8, took  # the flush and the close share the one timeout
    run = registry.run(rec.run_id)
    assert run.status is RunStatus.FINISHED and run.event_count == 4
    stuck = {s.name: s for s in run.sinks}["stuck"]
    assert "close timed out" in (stuck.last_error or "")
