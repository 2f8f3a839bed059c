"""Small real runs for the env-side probe tests: `esper.run` on the growing experiment into a
fresh runs.db, with the events and artifacts read back from it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from esper.experiment.runner import RunResult, run
from esper.leyline.events import TelemetryEvent, TelemetryEventType
from esper.registry import Registry
from tests.growing_spec import growing_spec

CORE_PROBES = ["gate_events", "slot_health"]  # growing_spec's own


@dataclass(frozen=True)
class RecordedRun:
    result: RunResult
    events: list[TelemetryEvent]
    artifacts: dict[str, str]  # artifact name -> path

    def of(self, *event_types: TelemetryEventType) -> list[TelemetryEvent]:
        return [e for e in self.events if e.event_type in event_types]


def record_run(directory: Path, probes: list[str], options: dict[str, Any] | None = None,
               **sections: Any) -> RecordedRun:
    """Run growing_spec with `probes` on (and their `options`), `sections` replacing its own."""
    telemetry = {"probes": [*CORE_PROBES, *probes], **(options or {})}
    spec = growing_spec(telemetry=telemetry, tracking={"mlflow": False}, **sections)
    result = run(spec, registry=directory / "runs.db")
    with Registry.open(directory / "runs.db") as registry:
        events = list(registry.events(result.record.run_id))
        artifacts = registry.artifacts(result.record.run_id)
    return RecordedRun(result, events, artifacts)

