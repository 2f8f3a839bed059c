"""Issue 22's throughput ratios, all measured in one process: batched envs, framework, MLflow.

    OMP_NUM_THREADS=1 python benchmarks/throughput.py [--repeats 3] [--batches B]
                                                      [--episode-length L]

What is timed (CPU time of this process, time.process_time: every thread, robust to other load
on a shared machine; the wall-time ratio is printed beside it; see benchmarks/timing.py), with
torch on one intra-op thread:
- batched_speedup: env-epochs per CPU-second of experiments/esper_lite_anchor.yaml with
  `training.batch_envs=true` (the envs' hosts as one stacked computation; `auto`, the default,
  picks it for both experiments' hosts) over
  `false` (the per-env loop), MLflow off; the same ratio for experiments/quickstart.yaml (seeds
  growing: seed training and the fused counterfactuals stacked too) is printed beside it.
  Target >= 2.
- bare_ratio: the quickstart with no seed germinated and no reference host (overhead.NO_SEEDS:
  the heuristic never reaches its germination epoch, the shaped reward), run by esper
  in-process (`esper.experiment.runner.run`, registry in a temporary directory, MLflow off) in
  the per-env mode (`training.batch_envs=false`) against `overhead.plain_loop` on the same spec:
  a bare eager PyTorch loop training and validating the same host on the same batches, env after
  env. Per-env on both sides, so the ratio is esper's own cost around the same computation;
  esper batched against the same plain loop is printed below it for information (batching
  changes the computation, so that ratio is not framework overhead). Target <= 1.05.
- mlflow_ratio: that no-seed run in the default, batched mode with MLflow on (recording into a
  temporary SQLite store) over MLflow off. Batched, the run is fastest, so MLflow's share is
  largest. Importing mlflow and creating the store (once per process) is timed apart and not
  in the ratio. Target <= 1.05.
- env_epochs_per_cpu_s: the anchor, batched, MLflow off (as benchmarks/anchor.py's RESULT).

Every ratio comes from this one process: the rows are repeated interleaved (all eight rows,
then all eight again, ...), so drifting machine load hits every row alike, and each row is the
median of its repeats. Imports are not timed: an untimed tiny run of every row goes first (lazy
imports such as the first optimiser's torch._dynamo, MLflow's experiment creation); building
data, models and policy is timed, inside each run.

--batches and --episode-length shorten both experiments alike for a quick check (e.g.
`--repeats 1 --batches 1 --episode-length 10`: well under a minute). The defaults (full
experiments: quickstart 2 envs x 30 epochs x 2 batches, anchor 4 envs x 150 epochs x 2 batches;
3 repeats) take about 10 minutes on a 2-core machine (9.6 measured, the anchor's per-env row a
third of it); fewer --repeats shorten that in proportion.

The last line, `RESULT batched_speedup=X bare_ratio=Y mlflow_ratio=Z env_epochs_per_cpu_s=W`,
is for scripts.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from pathlib import Path

from esper.experiment import load
from esper.experiment.runner import run
from esper.leyline.config import ExperimentSpec

from anchor import ANCHOR
from overhead import NO_SEEDS, PER_ENV, QUICKSTART, esper_run, plain_loop, with_tracking
from timing import Timing, median, ratio_line, single_threaded_torch, timed

MLFLOW_OFF = "tracking.mlflow=false"
BATCHED = "training.batch_envs=true"


def experiment(path: Path, batches: int | None, episode_length: int | None,
               *settings: str) -> ExperimentSpec:
    """The experiment at `path`, shortened as asked, with `settings` (`--set` style) applied."""
    shorten = [f"training.{key}={value}" for key, value in (
        ("batches", batches), ("episode_length", episode_length)) if value is not None]
    return load(path, (*shorten, *settings))


def env_epochs(spec: ExperimentSpec) -> int:
    return spec.training.envs * spec.training.episode_length * spec.training.batches


def rows(batches: int | None, episode_length: int | None, uri: str,
         directory: Path) -> tuple[dict[str, ExperimentSpec], dict[str, Callable[[], Timing]]]:
    """The specs of the quickstart and the anchor, and every row: label -> one timed run."""
    def spec(path: Path, *settings: str) -> ExperimentSpec:
        return experiment(path, batches, episode_length, *settings)

    no_seeds = spec(QUICKSTART, *NO_SEEDS, BATCHED)
    specs = {
        "quickstart, batched": spec(QUICKSTART, MLFLOW_OFF, BATCHED),
        "quickstart, per-env": spec(QUICKSTART, MLFLOW_OFF, PER_ENV),
        "anchor, batched": spec(ANCHOR, MLFLOW_OFF, BATCHED),
        "anchor, per-env": spec(ANCHOR, MLFLOW_OFF, PER_ENV),
        "no seeds, per-env": spec(QUICKSTART, *NO_SEEDS, MLFLOW_OFF, PER_ENV),
        "no seeds, batched": with_tracking(no_seeds, uri, False),
        "no seeds, batched, MLflow on": with_tracking(no_seeds, uri, True),
    }
    timers: dict[str, Callable[[], Timing]] = {
        label: (lambda s=s: esper_run(s, directory)) for label, s in specs.items()}
    # plain_loop reads only the task, host, seed and training sizes of the spec
    timers["plain PyTorch loop, no seeds"] = lambda: plain_loop(specs["no seeds, per-env"])
    return specs, timers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batches", type=int,
                        help="PPO batches (training.batches) of both experiments; default 2")
    parser.add_argument("--episode-length", type=int,
                        help="epochs per episode of both; default 30 (quickstart), 150 (anchor)")
    args = parser.parse_args()
    single_threaded_torch()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        uri = f"sqlite:///{tmp}/mlflow.db"
        from esper.nissa.mlflow_store import MlflowStore  # imports mlflow

        once = timed(lambda: MlflowStore.open(uri))
        # untimed: a tiny run of every row takes what a process pays once out of the timings
        for warm_up in rows(1, 6, uri, directory)[1].values():
            warm_up()
        specs, timers = rows(args.batches, args.episode_length, uri, directory)
        timings: dict[str, list[Timing]] = {label: [] for label in timers}
        for _ in range(args.repeats):  # interleaved
            for label, timer in timers.items():
                timings[label].append(timer())
    t = {label: median(runs) for label, runs in timings.items()}

    quickstart, anchor = specs["quickstart, batched"], specs["anchor, batched"]
    print(f"quickstart: {quickstart.training.envs} envs x {quickstart.training.episode_length} "
          f"epochs x {quickstart.training.batches} batches = {env_epochs(quickstart)} env-epochs; "
          f"anchor: {anchor.training.envs} x {anchor.training.episode_length} x "
          f"{anchor.training.batches} = {env_epochs(anchor)}")
    print(f"torch on 1 thread; one process; medians of {args.repeats} interleaved repeats; "
          "MLflow off unless named")
    print(f"{'row':<31}{'CPU s':>8}{'wall s':>9}  env-epochs per CPU-second")
    for label, timing in t.items():
        work = env_epochs(specs.get(label, specs["no seeds, per-env"]))
        print(f"{label:<31}{timing.cpu:8.2f}{timing.wall:9.2f}  {work / timing.cpu:7.1f}")
    print(f"{'MLflow once per process':<31}{once.cpu:8.2f}{once.wall:9.2f}  "
          "(import mlflow, create the store; in no row)")
    print()

    def verdict(met: bool) -> str:
        return "met" if met else "MISSED"

    batched_speedup = t["anchor, per-env"].cpu / t["anchor, batched"].cpu
    bare_ratio = t["no seeds, per-env"].cpu / t["plain PyTorch loop, no seeds"].cpu
    mlflow_ratio = t["no seeds, batched, MLflow on"].cpu / t["no seeds, batched"].cpu
    rate = env_epochs(anchor) / t["anchor, batched"].cpu
    print(ratio_line("batched speedup, anchor", t["anchor, per-env"], t["anchor, batched"],
                     f"target >= 2: {verdict(batched_speedup >= 2)}"))
    print(ratio_line("batched speedup, quickstart", t["quickstart, per-env"],
                     t["quickstart, batched"], "(seeds growing; for information)"))
    print(ratio_line("esper / bare loop, per-env", t["no seeds, per-env"],
                     t["plain PyTorch loop, no seeds"],
                     f"target <= 1.05: {verdict(bare_ratio <= 1.05)}"))
    print(ratio_line("esper batched / bare loop", t["no seeds, batched"],
                     t["plain PyTorch loop, no seeds"], "(batching, not overhead; information)"))
    print(ratio_line("MLflow on / off, batched", t["no seeds, batched, MLflow on"],
                     t["no seeds, batched"],
                     f"target <= 1.05: {verdict(mlflow_ratio <= 1.05)}"))
    print(f"{'anchor env-epochs per CPU-s':<31}{rate:6.1f}  (batched, MLflow off)")
    print(f"RESULT batched_speedup={batched_speedup:.3f} bare_ratio={bare_ratio:.3f} "
          f"mlflow_ratio={mlflow_ratio:.3f} env_epochs_per_cpu_s={rate:.2f}")


if __name__ == "__main__":
    main()
