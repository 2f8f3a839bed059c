"""The Emitter protocol: the hub and EventList take the same call; replay stamps step fields."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from esper.leyline.emitter import EmittedEvent, Emitter, EventList, replay
from esper.leyline.events import RunFinishedPayload, Severity, TelemetryEventType as T
from esper.nissa.hub import TelemetryHub

DONE = RunFinishedPayload("FINISHED", 0, 0)


def test_the_hub_and_the_event_list_have_the_protocol_signature():
    protocol = inspect.signature(Emitter.emit)
    assert inspect.signature(TelemetryHub.emit) == protocol
    # the event list takes the keywords into an EmittedEvent: its fields are the protocol's
    # keywords, with the same defaults, so a keyword the hub refuses is refused there too
    keywords = {name: p.default for name, p in protocol.parameters.items()
                if p.kind is inspect.Parameter.KEYWORD_ONLY}
    fields = {f.name: f.default for f in dataclasses.fields(EmittedEvent)}
    assert fields == {"event_type": dataclasses.MISSING, "payload": dataclasses.MISSING,
                      **keywords}
    with pytest.raises(TypeError):
        EventList().emit(T.RUN_FINISHED, DONE, epoc=1)


def test_an_event_list_keeps_every_call_in_order_until_drained():
    emitted = EventList()
    emitted.emit(T.RUN_FINISHED, DONE, env_id=1, message="a")
    emitted.emit(T.RUN_FINISHED, DONE, severity=Severity.ERROR, slot_id="r0c0")
    assert emitted.drain() == (
        EmittedEvent(T.RUN_FINISHED, DONE, Severity.INFO, None, 1, None, None, None, "a"),
        EmittedEvent(T.RUN_FINISHED, DONE, Severity.ERROR, None, None, None, None, "r0c0", ""))
    assert emitted.events == [] and emitted.drain() == ()


def test_replay_stamps_batch_and_epoch_and_keeps_the_rest():
    buffered, into = EventList(), EventList()
    buffered.emit(T.RUN_FINISHED, DONE, severity=Severity.WARNING, env_id=2, message="m")
    replay(buffered.drain(), into, batch=3, epoch=4)
    assert into.events == [
        EmittedEvent(T.RUN_FINISHED, DONE, Severity.WARNING, 3, 2, 4, None, None, "m")]
