"""The telemetry hub: components emit events, sinks receive them in batches off the caller's thread.

Flow of one event::

    emit() --append--> pending deque --dispatcher thread--> per-sink backlog
           --sink thread--> sink.write()

- ``emit`` only stamps the time and appends one tuple to a deque: no lock, no I/O, never blocks.
  ``deque.append`` is atomic, so an emit interrupted by a signal either happened or did not.
- The dispatcher thread numbers events in the order they were appended (``seq`` 0, 1, 2, ...,
  no gaps), wraps them in ``TelemetryEvent`` envelopes and hands each batch to every sink.
- Each sink has its own thread and a bounded backlog, so a slow sink never delays the others.
  When a sink's backlog is full, or its ``write`` raises, the events it did not get are counted
  as dropped against its name (``stats()``), logged once, and reported at the end of the run.
- ``flush`` waits until everything emitted before it has been written (or dropped) by every
  sink; ``close`` flushes, stops the threads and closes the sinks.

The hub knows nothing of the registry: the registry is one sink among others.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace
from itertools import count, repeat
from operator import add
from typing import Any, Protocol

from esper.leyline.events import (
    PAYLOAD_TYPES,
    Severity,
    SinkStats,
    TelemetryEvent,
    TelemetryEventType,
)

logger = logging.getLogger(__name__)

_now = time.time
_new_tuple = tuple.__new__
_PAYLOAD_TYPES_GET = PAYLOAD_TYPES.get


class Sink(Protocol):
    """Receives events in batches, on a thread of its own. ``write`` must not keep the list."""

    name: str

    def write(self, events: list[TelemetryEvent]) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class HubStats:
    emitted: int  # events emitted so far (numbered or still pending)
    sinks: tuple[SinkStats, ...]

    @property
    def dropped(self) -> int:
        """Events dropped, summed over sinks (an event dropped by two sinks counts twice)."""
        return sum(s.dropped for s in self.sinks)


class _Marker:
    """Travels through a queue behind the events put before it; set when it comes out."""

    def __init__(self) -> None:
        self.done = threading.Event()


class _FlushRequest:
    """Put in the pending deque by ``flush``; the dispatcher forwards one marker per sink."""

    def __init__(self) -> None:
        self.forwarded = threading.Event()
        self.sink_markers: list[_Marker] = []

    def wait(self, timeout: float | None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self.forwarded.wait(timeout):
            return False
        return all(m.done.wait(_remaining(deadline)) for m in self.sink_markers)


class _Stop:
    """Tells a sink thread to close its sink and end."""


class _SinkChannel:
    """One sink, its bounded backlog and the thread that feeds it."""

    def __init__(self, sink: Sink, max_backlog: int, max_write: int) -> None:
        self.sink = sink
        self._max_backlog = max_backlog  # events waiting for this sink at most
        self._max_write = max_write  # events per write() call at most
        self._items: deque[list[TelemetryEvent] | _Marker | _Stop] = deque()
        self._cond = threading.Condition()
        self._backlog = 0  # events queued or being written
        self._in_flight = 0  # events in the write() call under way
        self._abandoned = False  # close() gave up waiting: queued events were counted dropped
        self._written = 0
        self._dropped = 0
        self._failures = 0
        self._last_error: str | None = None
        self._thread = threading.Thread(
            target=self._run, name=f"esper-sink-{sink.name}", daemon=True
        )
        self._thread.start()

    def offer(self, events: list[TelemetryEvent]) -> None:
        """Queue a batch for the sink, or count it as dropped when the backlog is full."""
        with self._cond:
            if self._backlog + len(events) > self._max_backlog:
                if self._dropped == 0:
                    logger.warning(
                        "telemetry sink %r is falling behind (backlog of %d events): "
                        "dropping events; the count is reported at the end of the run",
                        self.sink.name,
                        self._backlog,
                    )
                self._dropped += len(events)
                return
            self._backlog += len(events)
            self._items.append(events)
            self._cond.notify()

    def put(self, item: _Marker | _Stop) -> None:
        with self._cond:
            self._items.append(item)
            self._cond.notify()

    def count_dropped(self, n: int, reason: str) -> None:
        with self._cond:
            self._dropped += n
            self._last_error = reason

    def join(self, timeout: float | None) -> bool:
        """Wait for the thread to end; on timeout, count the events it has not started to write
        as dropped (and never write them). A write under way is counted when it ends."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            with self._cond:
                queued = self._backlog - self._in_flight
                self._abandoned = True
                self._dropped += queued
                self._backlog -= queued
                self._last_error = (
                    f"close timed out: {queued} events dropped unwritten"
                    + (f", {self._in_flight} still being written" if self._in_flight else "")
                )
            return False
        return True

    def stats(self) -> SinkStats:
        with self._cond:
            return SinkStats(
                self.sink.name, self._written, self._dropped, self._failures, self._last_error
            )

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._items:
                    self._cond.wait()
                items = list(self._items)
                self._items.clear()
            batch: list[TelemetryEvent] = []
            for item in items:
                if isinstance(item, list):
                    batch.extend(item)
                    while len(batch) >= self._max_write:
                        self._write(batch[: self._max_write])
                        batch = batch[self._max_write :]
                    continue
                self._write(batch)
                batch = []
                if isinstance(item, _Marker):
                    item.done.set()
                else:
                    self._close_sink()
                    return
            self._write(batch)

    def _write(self, events: list[TelemetryEvent]) -> None:
        if not events:
            return
        with self._cond:
            if self._abandoned:  # already counted as dropped by join()
                return
            self._in_flight = len(events)
        try:
            self.sink.write(events)
        except BaseException as exc:  # a failing sink is reported, never fatal to the run
            self._record_failure(exc, dropped=len(events))
        else:
            with self._cond:
                self._written += len(events)
        with self._cond:
            self._in_flight = 0
            self._backlog -= len(events)

    def _close_sink(self) -> None:
        try:
            self.sink.close()
        except BaseException as exc:  # reported in stats() like a failed write
            self._record_failure(exc, dropped=0)

    def _record_failure(self, exc: BaseException, dropped: int) -> None:
        message = f"{type(exc).__name__}: {exc}"
        with self._cond:
            first = self._failures == 0
            self._failures += 1
            self._dropped += dropped
            self._last_error = message
        if first:
            logger.warning("telemetry sink %r failed: %s", self.sink.name, message)


class TelemetryHub:
    """Numbers the events of one run and fans them out to sinks on background threads.

    :param run_id: the registry's run id, stamped on every event
    :param sinks: where events go; each gets every event, in seq order, in batches
    :param max_backlog: events waiting for one sink at most; beyond it, that sink drops
    :param interval: seconds the dispatcher waits between batches when few events are pending
    :param max_batch: events per batch at most (and per ``write`` call)
    """

    def __init__(
        self,
        run_id: str,
        sinks: Sequence[Sink],
        *,
        max_backlog: int = 200_000,
        interval: float = 0.02,
        max_batch: int = 20_000,
    ) -> None:
        check_sink_names(sinks)
        self.run_id = run_id
        self._interval = interval
        self._max_batch = max_batch
        self._pending: deque[tuple[Any, ...] | _FlushRequest] = deque()
        self._append = self._pending.append  # bound once: emit is the caller's hot path
        self._next_seq = 0
        self._channels = [_SinkChannel(sink, max_backlog, max_batch) for sink in sinks]
        self._wake = threading.Event()
        self._closing = False
        self._closed = threading.Event()  # set when close() has ended
        self._late = 0  # events emitted while close() was under way, counted as dropped
        self._dispatcher = threading.Thread(
            target=self._dispatch_forever, name="esper-telemetry-hub", daemon=True
        )
        self._dispatcher.start()

    def emit(
        self,
        event_type: TelemetryEventType,
        payload: Any,
        *,
        severity: Severity = Severity.INFO,
        batch: int | None = None,
        env_id: int | None = None,
        epoch: int | None = None,
        seed_id: str | None = None,
        slot_id: str | None = None,
        message: str = "",
    ) -> None:
        """Record one event; returns at once (the seq is assigned in emission order, later).

        Raises:
            TypeError: ``payload`` is not an instance of ``PAYLOAD_TYPES[event_type]``.
            RuntimeError: the hub is closed.
        """
        if type(payload) is not _PAYLOAD_TYPES_GET(event_type):
            raise TypeError(_payload_mismatch(event_type, payload))
        if self._closing:
            raise RuntimeError(f"the telemetry hub of run {self.run_id} is closed")
        self._append(
            (_now(), event_type, severity, batch, env_id, epoch, seed_id, slot_id, message, payload)
        )

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every event emitted before this call is written (or counted as dropped).

        :param timeout: seconds to wait at most; None waits for as long as it takes
        :returns: False when the timeout expired first
        """
        if self._closed.is_set():
            return True
        request = _FlushRequest()
        self._pending.append(request)
        self._wake.set()
        if self._closing:
            # close() is under way and the dispatcher may already be gone: everything emitted
            # before this call is written or counted as dropped when close() ends.
            return self._closed.wait(timeout)
        return request.wait(timeout)

    def close(self, timeout: float | None = None) -> HubStats:
        """Flush, stop the threads, close every sink, and return the final counts.

        Events a sink has not started to write when ``timeout`` expires are counted as
        dropped and never written; a write under way is counted when it ends. Calling
        ``close`` again returns the same counts.
        """
        if not self._closed.is_set():
            deadline = None if timeout is None else time.monotonic() + timeout
            self._closing = True
            self._wake.set()
            self._dispatcher.join()  # quick: it never waits for a sink, only hands batches on
            late = self._discard_pending()  # emitted while close() was under way
            self._late += late
            for channel in self._channels:
                if late:
                    channel.count_dropped(late, f"{late} events emitted after close()")
                channel.join(_remaining(deadline))
            self._closed.set()
        return self.stats()

    @property
    def closed(self) -> bool:
        """True once ``close`` has ended."""
        return self._closed.is_set()

    def stats(self) -> HubStats:
        """Events emitted so far, and per sink: written, dropped, failures, last error."""
        pending = self._count_pending()
        sinks = tuple(c.stats() for c in self._channels)
        if self._closed.is_set() and pending:  # emitted as close() took its last look
            sinks = tuple(replace(s, dropped=s.dropped + pending) for s in sinks)
        return HubStats(self._next_seq + self._late + pending, sinks)

    def _discard_pending(self) -> int:
        """Empty the pending deque after the dispatcher ended; returns the events it held."""
        late = 0
        while self._pending:
            item = self._pending.popleft()
            if isinstance(item, _FlushRequest):
                item.forwarded.set()  # nothing left to wait for: the events are counted dropped
            else:
                late += 1
        return late

    def _count_pending(self) -> int:
        return sum(1 for item in list(self._pending) if not isinstance(item, _FlushRequest))

    def __enter__(self) -> TelemetryHub:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- dispatcher thread -------------------------------------------------------------------

    def _dispatch_forever(self) -> None:
        while True:
            if len(self._pending) < self._max_batch:
                self._wake.wait(self._interval)
                self._wake.clear()
            closing = self._closing  # read before draining: nothing is emitted after it is set
            self._dispatch_pending()
            if closing:
                for channel in self._channels:
                    channel.put(_Stop())
                return

    def _dispatch_pending(self) -> None:
        pending = self._pending
        items = [pending.popleft() for _ in range(len(pending))]  # appends may go on meanwhile
        start = 0
        for i, item in enumerate(items):
            if type(item) is _FlushRequest:
                self._number_and_deliver(items[start:i])
                self._forward(item)
                start = i + 1
        self._number_and_deliver(items[start:] if start else items)

    def _number_and_deliver(self, items: list[Any]) -> None:
        run_id, first = self.run_id, self._next_seq
        for offset in range(0, len(items), self._max_batch):
            chunk = items[offset : offset + self._max_batch]
            heads = zip(repeat(run_id), count(first + offset))  # (run_id, seq) of each event
            # TelemetryEvent(run_id, seq, *item) for each, looped in C (map, tuple.__new__)
            # instead of a NamedTuple's Python-level _make per event
            events = list(map(_new_tuple, repeat(TelemetryEvent), map(add, heads, chunk)))
            self._next_seq = first + offset + len(events)
            for channel in self._channels:
                channel.offer(events)

    def _forward(self, request: _FlushRequest) -> None:
        """Put a marker behind the events delivered so far in every sink's queue."""
        request.sink_markers = [_Marker() for _ in self._channels]
        for channel, marker in zip(self._channels, request.sink_markers):
            channel.put(marker)
        request.forwarded.set()


def check_sink_names(sinks: Sequence[Sink]) -> None:
    """Raises ValueError when two sinks have the same name (their counts would be mixed up)."""
    names = [sink.name for sink in sinks]
    if len(set(names)) != len(names):
        raise ValueError(f"sink names must be unique, got {names}")


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def _payload_mismatch(event_type: Any, payload: Any) -> str:
    if not isinstance(event_type, TelemetryEventType):
        return f"event_type must be a TelemetryEventType, got {event_type!r}"
    expected = PAYLOAD_TYPES.get(event_type)
    if expected is None:
        return f"{event_type.name} has no payload class in leyline.events.PAYLOAD_TYPES yet"
    return f"{event_type.name} takes a {expected.__name__}, got {type(payload).__name__}"
