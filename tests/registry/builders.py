"""Events and runs for registry tests."""

from __future__ import annotations

from esper.leyline.events import (
    BatchCompletedPayload,
    GovernorRollbackPayload,
    SeedStageChangedPayload,
    Severity,
    TelemetryEvent,
    TelemetryEventType,
)
from esper.registry import NewRun


def new_run(experiment: str = "exp", **fields: object) -> NewRun:
    return NewRun(experiment=experiment, config={"lr": 0.01, "envs": [1, 2]}, seed=7, **fields)


def make_events(run_id: str, count: int, start: int = 0) -> list[TelemetryEvent]:
    """``count`` events of three types from seq ``start``; env_id = seq % 4, batch = seq // 10."""
    events = []
    for seq in range(start, start + count):
        kind = seq % 3
        if kind == 0:
            event_type, data = TelemetryEventType.BATCH_COMPLETED, BatchCompletedPayload(
                mean_val_accuracy=seq / 7, mean_episode_return=-1.5, episodes=seq)
        elif kind == 1:
            event_type, data = TelemetryEventType.SEED_STAGE_CHANGED, SeedStageChangedPayload(
                "TRAINING", "BLENDING", gradient_health=None if seq % 2 else 0.25)
        else:
            event_type, data = TelemetryEventType.GOVERNOR_ROLLBACK, GovernorRollbackPayload(
                "nan_loss", float("nan") if seq == 5 else None, seq % 3)
        events.append(TelemetryEvent(
            run_id, seq, 1_700_000_000.0 + seq / 1000, event_type,
            Severity.WARNING if seq % 5 == 0 else Severity.INFO, seq // 10, seq % 4,
            seq % 25, f"seed-{seq % 2}", "r0c1", f"event {seq}", data))
    return events
