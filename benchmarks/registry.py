"""Telemetry throughput into runs.db, and the time an emit costs the training thread.

Emits EPOCH_COMPLETED events (three slots each, the heaviest payload a real run emits often)
through a TelemetryHub with the registry sink, in two phases:
- burst: as fast as one thread can emit, then flush. Reports the events/s committed (first emit
  -> every event in runs.db) and the mean time the emitting thread spends in one ``emit``;
- paced: emits at ``--rate`` events/s for ``--seconds``, as a steady producer would. Reports the
  rate at which events were committed while they were emitted, and the backlog left when the
  producer stopped. The registry sustains the rate when that backlog is at most 0.1 s of the
  producer's output (it never falls further behind than its batching).
Target (DESIGN.md section 8): >= 100,000 events/s sustained, nothing dropped.

    python benchmarks/registry.py [--events 500000] [--rate 100000] [--seconds 5] [--repeat 3]

The machine may be shared and noisy: runs of one phase can differ by 30%; compare medians.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from esper.leyline.events import EpochCompletedPayload, SlotSummary, TelemetryEventType
from esper.leyline.rewards import RewardComponents
from esper.nissa.hub import TelemetryHub
from esper.nissa.registry_sink import RegistrySink
from esper.registry import NewRun, Registry, RunStatus

BLOCK = 1_000  # events the paced producer emits between two looks at the clock
MAX_LAG = 0.1  # seconds of the producer's output a sustaining registry has not yet committed
KIND = TelemetryEventType.EPOCH_COMPLETED


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


SAMPLES = payloads(BLOCK)


def emit_range(hub: TelemetryHub, first: int, stop: int) -> None:
    """Emit events number ``first`` .. ``stop - 1`` (one EPOCH_COMPLETED each)."""
    emit = hub.emit
    for i in range(first, stop):
        emit(KIND, SAMPLES[i % BLOCK], batch=i // 4_000, env_id=i % 8, epoch=i % 25)


@contextmanager
def recorded(
    path: Path, experiment: str, events: int
) -> Iterator[tuple[Registry, str, TelemetryHub]]:
    """A registry at ``path``, a RUNNING run in it and a hub whose only sink is the registry;
    the run is finished (with the hub's sink report) when the block ends."""
    with Registry.open(path) as registry:
        run_id = registry.create_run(NewRun(experiment=experiment, config={}, seed=0)).run_id
        # The backlog holds every event: this measures throughput, not the drop policy.
        hub = TelemetryHub(run_id, [RegistrySink(registry)], max_backlog=events)
        yield registry, run_id, hub
        registry.finish_run(run_id, RunStatus.FINISHED, sinks=hub.close().sinks)


def burst(path: Path, events: int) -> float:
    """Emit ``events`` back to back, flush, print throughput and emit cost; return events/s."""
    with recorded(path, "benchmark-burst", events) as (registry, run_id, hub):
        start = time.perf_counter()
        emit_range(hub, 0, events)
        emitted = time.perf_counter()
        hub.flush()
        flushed = time.perf_counter()
        stored, dropped = registry.run(run_id).event_count, hub.close().dropped
    print(f"burst:  {events:,} events emitted back to back, {stored:,} in runs.db, "
          f"{dropped:,} dropped")
    print(f"  committed:            {events / (flushed - start):,.0f} events/s "
          f"(first emit -> all in runs.db)")
    print(f"  emit (caller thread): {(emitted - start) / events * 1e6:.2f} us/event; "
          f"flush after the last emit {flushed - emitted:.2f} s")
    return events / (flushed - start)


def paced(path: Path, rate: float, seconds: float) -> float:
    """Emit at ``rate`` events/s for ``seconds``, print whether the registry kept up; return the
    events/s committed while emitting."""
    events = int(rate * seconds) // BLOCK * BLOCK
    with recorded(path, "benchmark-paced", events) as (registry, run_id, hub), \
            Registry.open(path, create=False) as reader:
        start = time.perf_counter()
        for block in range(0, events, BLOCK):
            emit_range(hub, block, block + BLOCK)
            time.sleep(max(0.0, start + (block + BLOCK) / rate - time.perf_counter()))
        emitted = time.perf_counter()
        committed = reader.run(run_id).event_count
        hub.flush()
        flushed = time.perf_counter()
        dropped = hub.close().dropped
    backlog = events - committed
    verdict = "sustained" if backlog <= rate * MAX_LAG else "NOT sustained"
    print(f"paced:  {events:,} events at {rate:,.0f}/s requested, "
          f"{events / (emitted - start):,.0f}/s emitted, {dropped:,} dropped")
    print(f"  committed while emitting: {committed / (emitted - start):,.0f} events/s; "
          f"backlog at the end {backlog:,} events ({backlog / rate:.2f} s of the producer), "
          f"flushed in {flushed - emitted:.2f} s -> {verdict}")
    return committed / (emitted - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500_000, help="events of the burst")
    parser.add_argument("--rate", type=float, default=100_000, help="events/s of the paced phase")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of the paced phase")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of each phase; the medians are printed last (default 3)")
    args = parser.parse_args()
    bursts, paces = [], []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:  # ~0.4 GB per 500,000 events, freed each run
            bursts.append(burst(Path(tmp) / "burst.db", args.events))
            paces.append(paced(Path(tmp) / "paced.db", args.rate, args.seconds))
    print(f"median of {args.repeat}: burst {statistics.median(bursts):,.0f} events/s committed; "
          f"paced at {args.rate:,.0f}/s, {statistics.median(paces):,.0f} events/s committed "
          f"while emitting (target >= 100,000)")


if __name__ == "__main__":
    main()
