"""Does the learned policy improve? (issue 5)

For seeds 1..N, trains the lstm policy of experiments/learning.yaml (a small host that seeds
can improve; see the file's comments) and shows
- (a) its mean episode return over the last WINDOW batches against the first WINDOW, and
- (b) its final validation accuracy over the last WINDOW batches against the random policy's
  on the same seed, experiment and data. The random policy does not learn, so it runs only
  --random-batches batches and its accuracy is the mean over all of them.
A batch's accuracy is the mean over its envs of each episode's final validation accuracy.
Seed 0, the experiment's own, was used to choose the PPO settings, so it is not measured here.

    python benchmarks/learning.py [--seeds 3] [--batches 40] [--random-batches 10] [--window 10]

Prints one line per seed, the means over the seeds and how many seeds improved; it asserts
nothing. Deterministic given the seeds. About 3.3 min per seed with the defaults on one core
(--seeds 5: 16.5 min).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

from esper.experiment import load
from esper.experiment.runner import run
from esper.leyline.events import TelemetryEventType
from esper.registry import Registry

EXPERIMENT = Path(__file__).parents[1] / "experiments" / "learning.yaml"


class Batches(NamedTuple):
    """Per batch of a recorded run, in batch order."""

    returns: list[float]  # mean episode return over the envs
    accuracies: list[float]  # mean final validation accuracy over the envs, percent


class SeedResult(NamedTuple):
    seed: int
    return_first: float  # lstm, mean over the first window
    return_last: float  # lstm, mean over the last window
    accuracy_last: float  # lstm, mean over the last window
    accuracy_random: float  # random, mean over all its batches


def recorded_batches(path: Path, run_id: str) -> Batches:
    """The BATCH_COMPLETED series of a recorded run."""
    with Registry.open(path) as registry:
        events = [e.data for e in registry.events(
            run_id, types=[TelemetryEventType.BATCH_COMPLETED])]
    return Batches([e.mean_episode_return for e in events], [e.mean_val_accuracy for e in events])


def run_batches(db: Path, seed: int, batches: int, *overrides: str) -> Batches:
    """Run experiments/learning.yaml with `seed` for `batches` batches; its batch series."""
    spec = load(EXPERIMENT, (f"seed={seed}", f"training.batches={batches}",
                             "tracking.mlflow=false", *overrides))
    return recorded_batches(db, run(spec, registry=db).record.run_id)


def measure(seed: int, args: argparse.Namespace, db: Path) -> SeedResult:
    """Train the lstm and the random policy on `seed`; the numbers of (a) and (b)."""
    learned = run_batches(db, seed, args.batches)
    rand = run_batches(db, seed, args.random_batches, "policy.type=random")
    w = args.window
    return SeedResult(seed, statistics.mean(learned.returns[:w]),
                      statistics.mean(learned.returns[-w:]),
                      statistics.mean(learned.accuracies[-w:]), statistics.mean(rand.accuracies))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds 1..SEEDS (default 3)")
    parser.add_argument("--batches", type=int, default=40,
                        help="lstm batches (8 episodes each in learning.yaml; default 40)")
    parser.add_argument("--random-batches", type=int, default=10,
                        help="random-policy batches, accuracy averaged over all (default 10)")
    parser.add_argument("--window", type=int, default=10,
                        help="batches averaged at each end of the lstm run (default 10)")
    args = parser.parse_args()
    if args.seeds < 1 or args.random_batches < 1 or not 1 <= args.window <= args.batches // 2:
        parser.error("need --seeds >= 1, --random-batches >= 1 and 1 <= --window <= --batches / 2")
    print(f"{EXPERIMENT.name}: lstm {args.batches} batches, return over its first and last "
          f"{args.window}, accuracy over its last {args.window}; random {args.random_batches} "
          f"batches (it does not learn), accuracy over all of them")
    start = time.perf_counter()
    rows: list[SeedResult] = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(1, args.seeds + 1):
            r = measure(seed, args, Path(tmp) / f"runs-{seed}.db")
            rows.append(r)
            print(f"seed {seed}: (a) return first {r.return_first:8.2f} -> last "
                  f"{r.return_last:8.2f} ({r.return_last - r.return_first:+8.2f})   "
                  f"(b) final accuracy lstm "
                  f"{r.accuracy_last:6.2f}% vs random {r.accuracy_random:6.2f}% "
                  f"({r.accuracy_last - r.accuracy_random:+6.2f} points)", flush=True)
    first, last, lstm, rand = (statistics.mean(getattr(r, field) for r in rows)
                               for field in SeedResult._fields[1:])
    returns_up = sum(r.return_last > r.return_first for r in rows)
    accuracy_up = sum(r.accuracy_last > r.accuracy_random for r in rows)
    print(f"mean over {len(rows)} seeds: (a) return first {first:.2f} -> last {last:.2f} "
          f"({last - first:+.2f}), higher in {returns_up} of {len(rows)} seeds; "
          f"(b) final accuracy lstm {lstm:.2f}% vs random {rand:.2f}% ({lstm - rand:+.2f} points), "
          f"higher in {accuracy_up} of {len(rows)} seeds")
    print(f"wall time {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
