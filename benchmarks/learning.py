"""Does the learned policy improve? (issue 5)

For several seeds, trains the lstm policy of experiments/lstm_tele340.yaml and compares
- its mean episode return over the last batches against the first batches, and
- its final validation accuracy against the random policy on the same seeds and data.

    python benchmarks/learning.py [--seeds 3] [--batches 8] [--window 2]

Prints a table and the means; it asserts nothing (learning curves are noisy).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from esper.experiment import load
from esper.experiment.runner import run
from esper.leyline.events import TelemetryEventType
from esper.registry import Registry

EXPERIMENT = Path(__file__).parents[1] / "experiments" / "lstm_tele340.yaml"


def batch_returns(path: Path, run_id: str) -> list[float]:
    """Mean episode return of each batch of a recorded run."""
    with Registry.open(path) as registry:
        return [e.data.mean_episode_return
                for e in registry.events(run_id, types=[TelemetryEventType.BATCH_COMPLETED])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--window", type=int, default=2, help="batches averaged at each end")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            common = (f"seed={seed}", f"training.batches={args.batches}", "tracking.mlflow=false")
            db = Path(tmp) / f"runs-{seed}.db"
            learned = run(load(EXPERIMENT, common), registry=db)
            rand = run(load(EXPERIMENT, (*common, "policy.type=random")), registry=db)
            returns = batch_returns(db, learned.record.run_id)
            first = statistics.mean(returns[: args.window])
            last = statistics.mean(returns[-args.window:])
            rows.append((seed, first, last, statistics.mean(learned.summary.final_accuracy),
                         statistics.mean(rand.summary.final_accuracy)))
            print(f"seed {seed}: return first {first:7.3f} last {last:7.3f}   final acc "
                  f"lstm {rows[-1][3]:6.2f}%  random {rows[-1][4]:6.2f}%", flush=True)
    first, last, lstm, rand = (statistics.mean(r[i] for r in rows) for i in range(1, 5))
    print(f"mean over {len(rows)} seeds: return first {first:.3f} -> last {last:.3f} "
          f"({last - first:+.3f}); final accuracy lstm {lstm:.2f}% vs random {rand:.2f}% "
          f"({lstm - rand:+.2f} points)")


if __name__ == "__main__":
    main()
