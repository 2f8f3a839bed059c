"""`esper compare` on two runs of 1,000,000 events each, and `esper runs` on 10,000 runs.

Two runs of the same config and seed are generated through the registry's write path
(``Registry.write_events`` in batches, ``Registry.append_metrics`` with the series
``MetricMapper`` derives): per env epoch an EPOCH_COMPLETED (3 slots) and a THROUGHPUT_MEASURED,
per batch the episode outcomes, a PPO update and the batch summary, and seed lifecycle events.
The streams are identical except for ``ts`` and the wall-clock fields (step_time_ms, fps,
update_time_ms), so the divergence check scans both streams to the end: the worst case.
Then 10,000 runs are inserted (``esper.registry.runs.insert_run``, one transaction) and listed.

Targets (docs/architecture.md §8): compare < 2 s; listing 10,000 runs < 1 s. Compare runs its
divergence check on two threads beside the main one: its CPU time (all threads) is printed too,
as the wall time depends on how busy the cores are.

    python benchmarks/compare.py [--events 1000000] [--runs 10000] [--registry DIR]
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from sqlite_utils import Database

from esper.compare.report import compare
from esper.leyline.events import (
    BatchCompletedPayload,
    EpisodeOutcomePayload,
    EpochCompletedPayload,
    HeadValues,
    PPOUpdatePayload,
    SeedGateEvaluatedPayload,
    SeedGerminatedPayload,
    Severity,
    SlotSummary,
    TelemetryEvent,
    TelemetryEventType,
    ThroughputPayload,
    TrainingStartedPayload,
)
from esper.leyline.rewards import RewardComponents
from esper.nissa.metric_series import MetricMapper
from esper.registry import NewRun, Registry, RunStatus
from esper.registry import provenance
from esper.registry.runs import insert_run

T = TelemetryEventType
ENVS, EPISODE = 8, 25
CONFIG = {"name": "bench", "seed": 7, "training": {"envs": ENVS, "episode_length": EPISODE}}
_HEADS = HeadValues(*([0.5] * 8))


def _ppo(batch: int, clock: random.Random) -> PPOUpdatePayload:
    x = 1.0 / (batch + 1)
    return PPOUpdatePayload(
        policy_loss=-0.01 * x, value_loss=0.5 * x, entropy=2.0 - x, entropy_per_head=_HEADS,
        approx_kl=0.01, clip_fraction=0.1, explained_variance=0.3, ratio_mean=1.0,
        ratio_min=0.8, ratio_max=1.2, ratio_std=0.05, ratio_max_per_head=_HEADS,
        pre_clip_grad_norm=1.5, advantage_mean=0.0, advantage_std=1.0, return_mean=0.4,
        return_std=0.2, entropy_coef=0.01, epochs_completed=4, early_stopped=False,
        update_time_ms=clock.uniform(50, 60))  # wall clock: differs between the two runs


def stream(run_id: str, events: int, clock: random.Random) -> Iterator[TelemetryEvent]:
    """`events` events of a run; only ts and wall-clock fields depend on `clock`."""
    seq = 0

    def event(kind: T, data: object, batch: int | None = None, env: int | None = None,
              epoch: int | None = None, slot: str | None = None) -> TelemetryEvent:
        nonlocal seq
        seq += 1
        return TelemetryEvent(run_id, seq - 1, time.time() + clock.random(), kind, Severity.INFO,
                              batch, env, epoch, None, slot, "", data)

    yield event(T.TRAINING_STARTED, TrainingStartedPayload("bench", 7, ENVS, 10**6, EPISODE,
                                                           "lstm", ("throughput", "gate_events")))
    batch = 0
    while True:
        for epoch in range(EPISODE):
            for env in range(ENVS):
                i = batch * EPISODE + epoch
                yield event(T.EPOCH_COMPLETED, EpochCompletedPayload(
                    1.0 / (i + 1), 50.0 + i % 50, 1.1 / (i + 1), 48.0 + (i + env) % 50, 1, 0,
                    (SlotSummary("r0c0", "TRAINING", "conv_light", 0.0, None),
                     SlotSummary("r0c1", "BLENDING", "attention", 0.5, 0.4),
                     SlotSummary("r0c2", "DORMANT", None, 0.0, None)),
                    "WAIT", None, True, 0.1, RewardComponents(attribution=0.1),
                    47.0 + (i + env) % 50, 46.0 + (i + env) % 50), batch, env, epoch)
                step_ms = clock.uniform(20, 30)
                yield event(T.THROUGHPUT_MEASURED, ThroughputPayload(
                    step_ms, "cpu", clock.uniform(1, 2), 1000 / step_ms), batch, env, epoch)
                if epoch == 5:
                    yield event(T.SEED_GERMINATED, SeedGerminatedPayload("conv_light", 1200,
                                                                         "linear"),
                                batch, env, epoch, "r0c0")
                    yield event(T.SEED_GATE_EVALUATED, SeedGateEvaluatedPayload(
                        "G1", False, "TRAINING", ("exists",), ("epochs_in_stage_below_min",)),
                        batch, env, epoch, "r0c0")
        for env in range(ENVS):
            yield event(T.EPISODE_OUTCOME,
                        EpisodeOutcomePayload(60.0, 1.1, 1, 0, 0, 0.8, 59.0, 58.0),
                        batch, env)
        yield event(T.PPO_UPDATE_COMPLETED, _ppo(batch, clock), batch)
        yield event(T.BATCH_COMPLETED, BatchCompletedPayload(60.0, 0.8, ENVS, 59.0, 58.0), batch)
        batch += 1
        if seq >= events:
            return


def record_run(registry: Registry, events: int, clock: random.Random) -> tuple[str, float]:
    """A FINISHED run of about `events` events and its metric series; returns (id, seconds)."""
    start = time.perf_counter()
    run_id = registry.create_run(NewRun(experiment="bench", config=CONFIG, seed=7)).run_id
    mapper, points, chunk = MetricMapper(), [], []
    for event in stream(run_id, events, clock):
        chunk.append(event)
        if len(chunk) == 20_000:
            registry.write_events(chunk)
            points += mapper.points(chunk)
            chunk = []
    registry.write_events(chunk)
    points += mapper.points(chunk)
    registry.append_metrics(run_id, points)
    registry.finish_run(run_id, RunStatus.FINISHED)
    return run_id, time.perf_counter() - start


def insert_runs(path: Path, count: int) -> float:
    """`count` runs with a realistic config, in one transaction; returns seconds."""
    start = time.perf_counter()
    Registry.open(path).close()  # the schema
    origin, now = provenance.collect(), time.time()
    config = {**CONFIG, "padding": {f"key{i}": i for i in range(150)}}  # ~2 KB, like a real one
    db = Database(path)
    with db.conn:
        for i in range(count):
            insert_run(db, NewRun(experiment=f"exp{i % 20}", config=config, seed=i), origin,
                       now - i)
    db.close()
    return time.perf_counter() - start


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--registry", type=Path, default=None,
                        help="directory for the two registries (default: a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.registry or Path(tmp)
        events_db, runs_db = root / "compare-events.db", root / "compare-runs.db"
        with Registry.open(events_db) as registry:
            (a, write_a), (b, write_b) = (record_run(registry, args.events, random.Random(seed))
                                          for seed in (1, 2))
            counts = [registry.run(run_id).event_count for run_id in (a, b)]
            library, cpu = [], []
            for _ in range(3):
                start, start_cpu = time.perf_counter(), time.process_time()
                comparison = compare(registry, [a, b])
                library.append(time.perf_counter() - start)
                cpu.append(time.process_time() - start_cpu)
        esper = [sys.executable, "-c", "from esper.cli import main; main()"]
        cli = timed([*esper, "compare", a, b, "--format", "json", "--registry", str(events_db)])
        startup = timed([*esper, "--version"])
        insert = insert_runs(runs_db, args.runs)
        with Registry.open(runs_db, create=False) as registry:
            start = time.perf_counter()
            listed = registry.runs(limit=args.runs)
            listing = time.perf_counter() - start
        runs_json = timed([*esper, "runs", "--limit", str(args.runs), "--json",
                           "--registry", str(runs_db)])
        runs_table = timed([*esper, "runs", "--registry", str(runs_db)])

    (divergence,) = comparison.divergence
    print(f"two runs:            {counts[0]:,} and {counts[1]:,} events "
          f"(written in {write_a:.1f} s and {write_b:.1f} s, with their metrics)")
    print(f"event streams:       {'identical' if divergence.identical else 'DIFFERENT'} "
          "(wall-clock fields ignored): the divergence check scanned both to the end")
    print(f"compare (library):   {', '.join(f'{t:.2f}' for t in library)} s, three times "
          f"(target < 2 s); CPU time over its threads {', '.join(f'{t:.2f}' for t in cpu)} s")
    print(f"esper compare (CLI): {cli:.2f} s end to end, of which ~{startup:.2f} s is the "
          "interpreter and imports (esper --version)")
    print(f"{args.runs:,} runs:         inserted in {insert:.1f} s")
    print(f"list (library):      {listing:.2f} s for {len(listed):,} runs (target < 1 s)")
    print(f"esper runs --json:   {runs_json:.2f} s end to end, all {args.runs:,} runs")
    print(f"esper runs (table):  {runs_table:.2f} s end to end, the default 50 newest")


if __name__ == "__main__":
    main()
