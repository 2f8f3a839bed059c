"""The sink that records events into the run registry (``runs.db``)."""

from __future__ import annotations

from esper.leyline.events import TelemetryEvent
from esper.registry import Registry


class RegistrySink:
    """Writes each batch of events in one registry transaction. Closing leaves the registry open
    (its owner closes it)."""

    def __init__(self, registry: Registry, name: str = "registry") -> None:
        self.name = name
        self._registry = registry

    def write(self, events: list[TelemetryEvent]) -> None:
        self._registry.write_events(events)

    def close(self) -> None:
        """Nothing to release: the registry belongs to the caller."""
