"""Sustained telemetry throughput into runs.db, and the time an emit costs the training thread.

Emits EPOCH_COMPLETED events (three slots each, the realistic heavy payload) as fast as one
thread can through a TelemetryHub with the registry sink, then flushes. Reports:
- sustained events/s: events / (first emit -> every event committed in runs.db);
- emit cost: mean time the emitting thread spends in one ``emit`` call.
Target (DESIGN.md section 8): >= 100,000 events/s, nothing dropped.

    python benchmarks/registry.py [--events 500000] [--registry /tmp/bench-runs.db]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from esper.leyline.events import EpochCompletedPayload, SlotSummary, TelemetryEventType
from esper.leyline.rewards import RewardComponents
from esper.nissa.hub import TelemetryHub
from esper.nissa.registry_sink import RegistrySink
from esper.registry import NewRun, Registry, RunStatus


def payloads(n: int) -> list[EpochCompletedPayload]:
    """Distinct realistic payloads: losses and accuracies vary, one slot empty."""
    return [
        EpochCompletedPayload(
            train_loss=1.0 / (i + 1),
            train_accuracy=50.0 + i % 50,
            val_loss=1.1 / (i + 1),
            val_accuracy=48.0 + i % 50,
            seeds_live=2,
            seeds_fossilized=i % 3,
            slots=(
                SlotSummary("r0c0", "TRAINING", "conv_light", 0.0, None),
                SlotSummary("r0c1", "BLENDING", "attention", (i % 10) / 10, 0.37 + i % 7),
                SlotSummary("r0c2", "DORMANT", None, 0.0, None),
            ),
            action="ADVANCE",
            action_slot="r0c0",
            action_success=i % 4 == 0,
            reward=0.1 * (i % 5),
            reward_components=RewardComponents(attribution=0.05 * (i % 5), stage_shaping=0.02),
        )
        for i in range(n)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--registry", type=Path, default=None, help="default: a temporary file")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = args.registry or Path(tmp) / "runs.db"
        registry = Registry.open(path)
        run = registry.create_run(NewRun(experiment="benchmark", config={}, seed=0))
        samples = payloads(1_000)
        # The backlog holds the whole burst: this measures throughput, not the drop policy.
        hub = TelemetryHub(run.run_id, [RegistrySink(registry)], max_backlog=args.events)
        emit = hub.emit
        kind = TelemetryEventType.EPOCH_COMPLETED

        start = time.perf_counter()
        for i in range(args.events):
            emit(kind, samples[i % 1_000], batch=i // 4_000, env_id=i % 8, epoch=i % 25)
        emitted = time.perf_counter()
        hub.flush()
        flushed = time.perf_counter()
        stats = hub.close()
        registry.finish_run(run.run_id, RunStatus.FINISHED, sinks=stats.sinks)
        stored = registry.run(run.run_id).event_count
        registry.close()
        size_mb = path.stat().st_size / 1e6

    rate = args.events / (flushed - start)
    print(f"events:               {args.events:,} EPOCH_COMPLETED (3 slots), {stored:,} in runs.db")
    print(f"dropped:              {stats.dropped:,}")
    print(f"sustained:            {rate:,.0f} events/s into runs.db (target >= 100,000)")
    print(f"emit (caller thread): {(emitted - start) / args.events * 1e6:.2f} us/event")
    print(f"flush after last emit: {flushed - emitted:.2f} s; runs.db {size_mb:.0f} MB")


if __name__ == "__main__":
    main()
