"""Cost of the telemetry probes: the same run with every probe on (the profiler aside) and off.

    python benchmarks/probes.py [--repeats 3]

Runs experiments/telemetry_wiring.yaml (lstm policy, MLflow off) alternately with all its
probes and with none, and prints the median wall times and their ratio (target <= 1.05).
Only the ratio of runs measured side by side in one process means anything on a shared machine.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from esper.experiment import load
from esper.experiment.runner import run

EXPERIMENT = Path(__file__).parents[1] / "experiments" / "telemetry_wiring.yaml"


def timed(spec, registry: Path) -> float:
    start = time.perf_counter()
    run(spec, registry=registry)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    on = load(EXPERIMENT, ("tracking.mlflow=false",))
    off = replace(on, telemetry=replace(on.telemetry, probes=()), wiring=None)
    times_on, times_off = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):  # interleaved: drifting machine load hits both
            times_off.append(timed(off, Path(tmp) / f"off-{i}.db"))
            times_on.append(timed(on, Path(tmp) / f"on-{i}.db"))
    t_on, t_off = statistics.median(times_on), statistics.median(times_off)
    print(f"probes: {', '.join(on.telemetry.probes)}")
    print(f"all probes off: {t_off:7.2f} s (median of {args.repeats})")
    print(f"all probes on:  {t_on:7.2f} s")
    print(f"ratio on / off: {t_on / t_off:7.3f}  (target <= 1.05)")


if __name__ == "__main__":
    main()
