"""Cost of the telemetry probes: the same run with every probe on (the profiler aside) and off.

    python benchmarks/probes.py [--repeats 3]

Runs experiments/telemetry_wiring.yaml (lstm policy, MLflow off) alternately with all its
probes and with none, and prints the median CPU and wall times and their ratios (target
<= 1.05). CPU time is the work each run did, robust to other load (benchmarks/timing.py).
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path

from esper.experiment import load
from esper.experiment.runner import run

from timing import median, ratio_line, single_threaded_torch, timed

EXPERIMENT = Path(__file__).parents[1] / "experiments" / "telemetry_wiring.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    single_threaded_torch()
    on = load(EXPERIMENT, ("tracking.mlflow=false",))
    off = replace(on, telemetry=replace(on.telemetry, probes=()), wiring=None)
    times_on, times_off = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):  # interleaved: drifting machine load hits both
            times_off.append(timed(lambda: run(off, registry=Path(tmp) / f"off-{i}.db")))
            times_on.append(timed(lambda: run(on, registry=Path(tmp) / f"on-{i}.db")))
    t_on, t_off = median(times_on), median(times_off)
    print(f"probes: {', '.join(on.telemetry.probes)}; torch on 1 thread")
    for label, t in (("all probes off", t_off), ("all probes on", t_on)):
        print(f"{label:<31}{t.cpu:6.2f} s CPU  {t.wall:6.2f} s wall  (median of {args.repeats})")
    print(ratio_line("ratio on / off", t_on, t_off, "target <= 1.05"))


if __name__ == "__main__":
    main()
