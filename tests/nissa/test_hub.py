"""TelemetryHub: numbering, fan-out in batches, flush, counted drops of failing or slow sinks."""

from __future__ import annotations

import threading
import time

import pytest

from esper.leyline.events import (
    BatchCompletedPayload,
    RunFinishedPayload,
    Severity,
    TelemetryEvent,
    TelemetryEventType,
)
from esper.nissa.hub import TelemetryHub
from tests.polling import wait_until

BATCH = TelemetryEventType.BATCH_COMPLETED


def payload(i: int) -> BatchCompletedPayload:
    return BatchCompletedPayload(mean_val_accuracy=float(i), mean_episode_return=0.5, episodes=i)


class ListSink:
    """Keeps every batch it is given."""

    def __init__(self, name: str = "list") -> None:
        self.name = name
        self.batches: list[list[TelemetryEvent]] = []
        self.closed = False

    @property
    def events(self) -> list[TelemetryEvent]:
        return [e for batch in self.batches for e in batch]

    def write(self, events: list[TelemetryEvent]) -> None:
        self.batches.append(list(events))

    def close(self) -> None:
        self.closed = True


class FailingSink(ListSink):
    def write(self, events: list[TelemetryEvent]) -> None:
        raise OSError("disk full")


class BlockedSink(ListSink):
    """Blocks in write() until released: a sink that cannot keep up."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.release = threading.Event()
        self.entered = threading.Event()  # set when a write() has started

    def write(self, events: list[TelemetryEvent]) -> None:
        self.entered.set()
        self.release.wait()
        super().write(events)


def test_events_are_numbered_from_zero_without_gaps_in_emission_order():
    sink = ListSink()
    with TelemetryHub("run1", [sink]) as hub:
        for i in range(5_000):
            hub.emit(BATCH, payload(i), batch=i, env_id=i % 3)
    events = sink.events
    assert [e.seq for e in events] == list(range(5_000))
    assert [e.data.episodes for e in events] == list(range(5_000))
    assert {e.run_id for e in events} == {"run1"}
    assert sink.closed


def test_the_envelope_carries_what_emit_was_given():
    sink = ListSink()
    with TelemetryHub("run1", [sink]) as hub:
        before = time.time()
        hub.emit(BATCH, payload(1), severity=Severity.WARNING, batch=3, env_id=2, epoch=7,
                 seed_id="seed-4", slot_id="r0c1", message="hello")
    (event,) = sink.events
    assert event._replace(ts=0.0) == TelemetryEvent(
        "run1", 0, 0.0, BATCH, Severity.WARNING, 3, 2, 7, "seed-4", "r0c1", "hello", payload(1)
    )
    assert before <= event.ts <= time.time()


def test_every_sink_gets_every_event_in_batches():
    first, second = ListSink("a"), ListSink("b")
    with TelemetryHub("run1", [first, second], max_batch=100) as hub:
        for i in range(1_000):
            hub.emit(BATCH, payload(i))
    assert [e.seq for e in first.events] == [e.seq for e in second.events] == list(range(1_000))
    assert max(len(b) for b in first.batches) <= 100


def test_emitters_on_several_threads_lose_nothing_and_share_one_sequence():
    sink = ListSink()
    hub = TelemetryHub("run1", [sink])

    def emit_many(thread: int) -> None:
        for i in range(2_000):
            hub.emit(BATCH, payload(i), env_id=thread)

    threads = [threading.Thread(target=emit_many, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats = hub.close()
    assert sorted(e.seq for e in sink.events) == list(range(8_000))
    for t in range(4):  # each thread's events keep their order
        mine = [e.data.episodes for e in sink.events if e.env_id == t]
        assert mine == list(range(2_000))
    assert stats.emitted == 8_000 and stats.dropped == 0


def test_flush_returns_once_everything_emitted_before_it_is_written():
    sink = ListSink()
    with TelemetryHub("run1", [sink], interval=5.0) as hub:  # no periodic wake-up to help
        for i in range(300):
            hub.emit(BATCH, payload(i))
        assert hub.flush(timeout=30)
        assert len(sink.events) == 300


def test_a_failing_sink_is_reported_by_name_and_does_not_disturb_the_others():
    good, bad = ListSink("good"), FailingSink("bad")
    hub = TelemetryHub("run1", [good, bad])
    for i in range(100):
        hub.emit(BATCH, payload(i))
    stats = hub.close()
    by_name = {s.name: s for s in stats.sinks}
    assert by_name["good"].written == 100 and by_name["good"].dropped == 0
    assert by_name["bad"].written == 0 and by_name["bad"].dropped == 100
    assert by_name["bad"].failures >= 1 and by_name["bad"].last_error == "OSError: disk full"
    assert stats.dropped == 100
    assert len(good.events) == 100


def test_a_sink_that_falls_behind_drops_beyond_its_backlog_and_counts_it():
    slow = BlockedSink("slow")
    hub = TelemetryHub("run1", [slow], max_backlog=50, max_batch=10)
    for i in range(200):
        hub.emit(BATCH, payload(i))
    assert hub.flush(timeout=0.5) is False  # the blocked sink holds the flush
    slow.release.set()
    (stats,) = hub.close(timeout=30).sinks
    assert stats.dropped >= 150 and stats.written + stats.dropped == 200
    assert len(slow.events) == stats.written


def test_a_slow_sink_does_not_hold_the_others_back():
    slow, fast = BlockedSink("slow"), ListSink("fast")
    hub = TelemetryHub("run1", [slow, fast])
    for i in range(500):
        hub.emit(BATCH, payload(i))
    deadline = time.monotonic() + 30
    while len(fast.events) < 500 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(fast.events) == 500 and slow.events == []
    slow.release.set()
    assert all(s.written == 500 for s in hub.close(timeout=30).sinks)


def test_close_with_a_timeout_drops_what_a_stuck_sink_has_not_started_to_write():
    stuck = BlockedSink("stuck")
    hub = TelemetryHub("run1", [stuck])
    for i in range(30):
        hub.emit(BATCH, payload(i))
    assert wait_until(lambda: stuck.entered.is_set())  # the 30 are in the write under way
    for i in range(30, 50):
        hub.emit(BATCH, payload(i))
    (sink_stats,) = hub.close(timeout=0.5).sinks
    # The 20 queued ones are dropped (and will never be written); the 30 being written are
    # neither yet: they are counted when that write ends.
    assert (sink_stats.written, sink_stats.dropped) == (0, 20)
    assert sink_stats.last_error == "close timed out: 20 events dropped unwritten, 30 still being written"
    stuck.release.set()
    assert wait_until(lambda: hub.stats().sinks[0].written == 30)
    assert hub.stats().sinks[0].dropped == 20 and len(stuck.events) == 30


def test_a_flush_during_close_returns_when_close_has_ended():
    stuck = BlockedSink("stuck")
    hub = TelemetryHub("run1", [stuck])
    hub.emit(BATCH, payload(0))
    closing = threading.Thread(target=hub.close, daemon=True)
    closing.start()
    assert wait_until(lambda: hub._closing)
    flushed: list[bool] = []
    flushing = threading.Thread(target=lambda: flushed.append(hub.flush()), daemon=True)
    flushing.start()
    flushing.join(0.3)
    assert flushing.is_alive()  # the event is not written yet
    stuck.release.set()
    closing.join(5)
    flushing.join(5)
    assert flushed == [True] and len(stuck.events) == 1


def test_a_sink_that_raises_a_base_exception_is_counted_not_lost():
    class Exiting(ListSink):
        def write(self, events: list[TelemetryEvent]) -> None:
            raise SystemExit(3)

    healthy = ListSink("healthy")
    with TelemetryHub("run1", [Exiting("exiting"), healthy]) as hub:
        for i in range(10):
            hub.emit(BATCH, payload(i))
        assert hub.flush(timeout=5)  # the sink's thread survives to answer the flush
        hub.emit(BATCH, payload(10))
    exiting, kept = hub.stats().sinks
    assert (exiting.written, exiting.dropped) == (0, 11) and exiting.failures >= 1
    assert exiting.last_error == "SystemExit: 3"
    assert kept.written == 11


def test_a_write_never_gets_more_than_max_batch_events():
    sizes: list[int] = []

    class Sizes(ListSink):
        def write(self, events: list[TelemetryEvent]) -> None:
            sizes.append(len(events))
            time.sleep(0.002)  # slower than the dispatcher: several of its batches queue up
            super().write(events)

    slow = Sizes("sizes")
    with TelemetryHub("run1", [slow], max_batch=100, interval=0.001) as hub:
        for i in range(5_000):
            hub.emit(BATCH, payload(i))
    assert max(sizes) <= 100 and sum(sizes) == 5_000
    assert [e.seq for e in slow.events] == list(range(5_000))


def test_close_is_idempotent_and_emit_after_close_is_refused():
    hub = TelemetryHub("run1", [ListSink()])
    hub.emit(BATCH, payload(0))
    assert hub.close() == hub.close()
    with pytest.raises(RuntimeError, match="closed"):
        hub.emit(BATCH, payload(1))
    assert hub.flush() is True


def test_emit_refuses_a_payload_of_the_wrong_class():
    with TelemetryHub("run1", [ListSink()]) as hub:
        with pytest.raises(TypeError, match="BATCH_COMPLETED takes a BatchCompletedPayload"):
            hub.emit(BATCH, RunFinishedPayload("FINISHED", 0, 0))
        with pytest.raises(TypeError, match="must be a TelemetryEventType"):
            hub.emit("BATCH_COMPLETED", payload(0))  # type: ignore[arg-type]


def test_sink_names_must_be_unique():
    with pytest.raises(ValueError, match="unique"):
        TelemetryHub("run1", [ListSink("x"), ListSink("x")])
