"""How training code reports telemetry: the ``Emitter`` protocol, and a list that records events.

Training code (simic's env loop, lifecycle reporter and probes) types against ``Emitter``, never
the concrete hub: the run's ``nissa.hub.TelemetryHub`` satisfies it, and so does ``EventList``,
which keeps every call in memory. Tests give a component an ``EventList`` to read what it emitted.

The learned policy buffers its probes' events in an ``EventList`` rather than holding the hub: it
is built (and its checkpoint loaded) at compile time, before a run and its hub exist, and `act`
and the PPO update do not know the step (batch, epoch). The env loop replays the buffer into the
hub with the step fields stamped (``replay``), right after the act or the update that raised them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from esper.leyline.events import Severity, TelemetryEventType


class Emitter(Protocol):
    """Takes one event at a time; the envelope's fields are keywords (docs/architecture.md
    section 3)."""

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
        """Record one event; ``payload`` is an instance of ``PAYLOAD_TYPES[event_type]``."""


@dataclass(frozen=True)
class EmittedEvent:
    """The arguments of one ``emit`` call, as an ``EventList`` keeps them."""

    event_type: TelemetryEventType
    payload: Any  # an instance of leyline.events.PAYLOAD_TYPES[event_type]
    severity: Severity = Severity.INFO  # the defaults are the protocol's
    batch: int | None = None
    env_id: int | None = None
    epoch: int | None = None
    seed_id: str | None = None
    slot_id: str | None = None
    message: str = ""


class EventList:
    """An ``Emitter`` that appends every event to ``events``, in emission order."""

    def __init__(self) -> None:
        self.events: list[EmittedEvent] = []

    def emit(self, event_type: TelemetryEventType, payload: Any, **envelope: Any) -> None:
        """Keep the event; `envelope` holds the protocol's keywords (severity, batch, ...)."""
        self.events.append(EmittedEvent(event_type, payload, **envelope))

    def drain(self) -> tuple[EmittedEvent, ...]:
        """The events kept since the last drain, oldest first; the list is then empty."""
        events, self.events = tuple(self.events), []
        return events


def replay(events: Iterable[EmittedEvent], into: Emitter, *, batch: int | None,
           epoch: int | None) -> None:
    """Emit buffered ``events`` through ``into`` with the step fields ``batch`` and ``epoch``,
    which their emitter did not know (the other fields as recorded)."""
    for e in events:
        into.emit(e.event_type, e.payload, severity=e.severity, batch=batch, env_id=e.env_id,
                  epoch=epoch, seed_id=e.seed_id, slot_id=e.slot_id, message=e.message)
