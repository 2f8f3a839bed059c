"""Telemetry throughput into runs.db, and the time an emit costs the training thread.

Emits events through a TelemetryHub with the registry sink, for two workloads:
- heaviest: EPOCH_COMPLETED events (three slots each), the largest payload a run emits often;
- recorded: the event stream of a real run, replayed in its order: by default a fresh run of
  experiments/telemetry_wiring.yaml (every probe but the profiler on, ~300 events of 13 types,
  ANALYTICS_SNAPSHOT and PPO_UPDATE_COMPLETED payloads of ~1.5 KB among them), or the newest
  run of the registry given with ``--replay``.
Each workload runs in two phases:
- burst: as fast as one thread can emit, then flush. Reports the events/s committed (first emit
  -> every event in runs.db) and the mean time the emitting thread spends in one ``emit``;
- paced: emits at ``--rate`` events/s for ``--seconds``, as a steady producer would. Reports the
  rate at which events were committed while they were emitted, and the backlog left when the
  producer stopped. The registry sustains the rate when that backlog is at most 0.1 s of the
  producer's output (it never falls further behind than its batching).
Target (docs/architecture.md §8): >= 100,000 events/s sustained, nothing dropped.

    python benchmarks/registry.py [--events 500000] [--rate 100000] [--seconds 5] [--repeat 3]
                                  [--replay RUNS_DB]

The machine may be shared and noisy: runs of one phase can differ by 30%; compare medians.
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

from esper.leyline.events import (
    EpochCompletedPayload,
    Severity,
    SlotSummary,
    TelemetryEventType,
)
from esper.leyline.rewards import RewardComponents
from esper.nissa.hub import TelemetryHub
from esper.nissa.registry_sink import RegistrySink
from esper.registry import NewRun, Registry, RunStatus

TARGET = 100_000  # events/s (docs/architecture.md §8)
MAX_LAG = 0.1  # seconds of the producer's output a sustaining registry has not yet committed
PACE_BLOCK = 1_000  # events the paced producer emits between two looks at the clock, on average
RECORDED_EXPERIMENT = Path(__file__).parent.parent / "experiments" / "telemetry_wiring.yaml"


class Emission(NamedTuple):
    """The arguments of one ``emit`` call."""

    event_type: TelemetryEventType
    severity: Severity
    batch: int | None
    env_id: int | None
    epoch: int | None
    seed_id: str | None
    slot_id: str | None
    message: str
    payload: Any


def heaviest(n: int = 1_000) -> list[Emission]:
    """Distinct EPOCH_COMPLETED events: losses and accuracies vary, one slot empty."""
    return [
        Emission(
            TelemetryEventType.EPOCH_COMPLETED, Severity.INFO, i // 200, i % 8, i % 25, None,
            None, "",
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
                reward_components=RewardComponents(
                    attribution=0.05 * (i % 5), stage_shaping=0.02
                ),
                committed_accuracy=46.0 + i % 50,
                host_accuracy=45.0 + i % 50,
            ),
        )
        for i in range(n)
    ]


def recorded(replay: Path | None, directory: Path) -> list[Emission]:
    """The events of the newest run in ``replay``; without it, of a run of the telemetry_wiring
    experiment recorded into ``directory`` first (MLflow off)."""
    if replay is None:
        replay = directory / "recorded.db"
        print(f"recording {RECORDED_EXPERIMENT.name} into a temporary registry ...")
        # In a process of its own: torch's thread pools, once started here, would take CPU
        # from the hub's threads (the burst rate fell from ~70,000 to ~50,000 events/s).
        recording = subprocess.run(
            [sys.executable, "-c", "from esper.cli import main; main()", "run",
             str(RECORDED_EXPERIMENT), "--registry", str(replay), "--no-mlflow"],
            capture_output=True, text=True,
        )
        if recording.returncode != 0:
            sys.exit(f"recording {RECORDED_EXPERIMENT} failed:\n{recording.stderr}")
    with Registry.open(replay, create=False) as source:
        newest = source.runs()[0].run_id
        return [Emission(*event[3:]) for event in source.events(newest)]


def emit_range(hub: TelemetryHub, workload: list[Emission], first: int, stop: int) -> None:
    """Emit events number ``first`` .. ``stop - 1`` of ``workload`` repeated end to end."""
    emit, n = hub.emit, len(workload)
    for i in range(first, stop):
        kind, severity, batch, env_id, epoch, seed_id, slot_id, message, payload = workload[i % n]
        emit(kind, payload, severity=severity, batch=batch, env_id=env_id, epoch=epoch,
             seed_id=seed_id, slot_id=slot_id, message=message)


@contextmanager
def recording_hub(
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


def burst(path: Path, workload: list[Emission], events: int) -> float:
    """Emit ``events`` back to back, flush, print throughput and emit cost; return events/s."""
    with recording_hub(path, "benchmark-burst", events) as (registry, run_id, hub):
        start = time.perf_counter()
        emit_range(hub, workload, 0, events)
        emitted = time.perf_counter()
        hub.flush()
        flushed = time.perf_counter()
        stored, dropped = registry.run(run_id).event_count, hub.close().dropped
    print(f"  burst:  {events:,} events emitted back to back, {stored:,} in runs.db, "
          f"{dropped:,} dropped")
    print(f"    committed:            {events / (flushed - start):,.0f} events/s "
          f"(first emit -> all in runs.db)")
    print(f"    emit (caller thread): {(emitted - start) / events * 1e6:.2f} us/event; "
          f"flush after the last emit {flushed - emitted:.2f} s")
    return events / (flushed - start)


def paced(
    path: Path, workload: list[Emission], rate: float, seconds: float
) -> tuple[float, bool]:
    """Emit at ``rate`` events/s for ``seconds``, print whether the registry kept up; return the
    events/s committed while emitting and whether the registry sustained the rate."""
    events = int(rate * seconds)
    # Blocks of irregular sizes, as a training loop's are: batches of one size only would let
    # SQLite reuse one prepared INSERT statement, which a real run cannot.
    sizes = random.Random(0)
    with recording_hub(path, "benchmark-paced", events) as (registry, run_id, hub), \
            Registry.open(path, create=False) as reader:
        start = time.perf_counter()
        in_emit = 0.0  # seconds the producer spent emitting, its sleeps left out
        block = 0
        while block < events:
            block_stop = min(events, block + sizes.randint(1, 2 * PACE_BLOCK - 1))
            block_start = time.perf_counter()
            emit_range(hub, workload, block, block_stop)
            block_end = time.perf_counter()
            in_emit += block_end - block_start
            time.sleep(max(0.0, start + block_stop / rate - block_end))
            block = block_stop
        emitted = time.perf_counter()
        committed = reader.run(run_id).event_count
        hub.flush()
        flushed = time.perf_counter()
        dropped = hub.close().dropped
    backlog = events - committed
    sustained = backlog <= rate * MAX_LAG
    print(f"  paced:  {events:,} events at {rate:,.0f}/s requested, "
          f"{events / (emitted - start):,.0f}/s emitted, {dropped:,} dropped")
    print(f"    emit (caller thread): {in_emit / events * 1e6:.2f} us/event")
    print(f"    committed while emitting: {committed / (emitted - start):,.0f} events/s; "
          f"backlog at the end {backlog:,} events ({backlog / rate:.2f} s of the producer), "
          f"flushed in {flushed - emitted:.2f} s -> "
          f"{'sustained' if sustained else 'NOT sustained'}")
    return committed / (emitted - start), sustained


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500_000, help="events of a burst")
    parser.add_argument("--rate", type=float, default=100_000, help="events/s of a paced phase")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of a paced phase")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of each phase; the medians are printed last (default 3)")
    parser.add_argument("--replay", type=Path,
                        help="registry whose newest run is the recorded workload "
                             "(default: record experiments/telemetry_wiring.yaml first)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workloads = {"heaviest": heaviest(), "recorded": recorded(args.replay, Path(tmp))}
    medians, met = [], True
    for name, workload in workloads.items():
        kinds = len({emission.event_type for emission in workload})
        print(f"{name}: {len(workload):,} distinct events of {kinds} types, repeated")
        bursts, paces = [], []
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory() as tmp:  # ~0.4 GB per 500,000 events, freed
                bursts.append(burst(Path(tmp) / "burst.db", workload, args.events))
                paces.append(paced(Path(tmp) / "paced.db", workload, args.rate, args.seconds))
        kept_up = sum(sustained for _, sustained in paces)
        medians.append(
            f"{name}: burst {statistics.median(bursts):,.0f} events/s committed; "
            f"paced at {args.rate:,.0f}/s sustained in {kept_up} of {args.repeat} runs, "
            f"{statistics.median(rate for rate, _ in paces):,.0f} events/s committed while "
            f"emitting"
        )
        met = met and statistics.median(bursts) >= TARGET and kept_up == args.repeat
    print(f"median of {args.repeat} (target >= {TARGET:,}/s):")
    for line in medians:
        print(f"  {line}")
    if args.rate >= TARGET:
        print(f"target {'met' if met else 'NOT met'}: median burst >= {TARGET:,}/s and every "
              f"paced run sustained, for every workload")


if __name__ == "__main__":
    main()
