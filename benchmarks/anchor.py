"""Env-epochs per CPU-second of esper on the esper-lite anchor (issue 22, item 1).

experiments/esper_lite_anchor.yaml does the work per env-epoch of esper-lite's PPO trainer on
its `cifar_minimal` task with mock CIFAR data: the same host (2/4/8 channels, 1x1 kernels, no
pooling, all three blocks at 32x32), 192 training and 50 validation images per env-epoch in
batches of 64, 4 envs x 150 epochs x 2 PPO batches = 1,200 env-epochs, an LSTM policy, the
shaped reward. This script runs it in-process (`esper.experiment.runner.run`, a registry in a
temporary directory) with torch on one thread, and prints CPU seconds (time.process_time: every
thread of the process; see benchmarks/timing.py), wall seconds and env-epochs per CPU-second.
Imports are not timed, on either side (an untimed 1-epoch run first takes the lazy ones out);
building the data, models and policy is, inside the run.

    OMP_NUM_THREADS=1 python benchmarks/anchor.py [--repeats 1] [--mlflow] [--pooled]
                                                  [--batches N] [--episode-length L]

Rows: MLflow off (always); MLflow on into a temporary SQLite store (--mlflow; importing mlflow
and creating the store, once per process, is timed apart); MLflow off on the host esper had
before `host.pooling` (--pooled: max-pool after every block, about half the host's work: not a
fair anchor, shown to size the difference). --batches and --episode-length shorten the run for a
quick check. Repeats are interleaved, so drifting load hits every row alike; each row is the
median. The last line, `RESULT env_epochs_per_cpu_s=X` (the MLflow-off row), is for scripts.

esper-lite the same way. Both packages are named `esper`: give esper-lite its own environment.

    git clone https://github.com/tachyon-beep/esper-lite && cd esper-lite
    uv sync   # or: python -m venv .venv && .venv/bin/pip install -e .

esper-lite has no command-line switch for mock data (its task specs hold `mock: False`), so
run its trainer in-process: replace `esper.runtime.get_task_spec` by a function returning the
spec of `cifar_minimal` with `dataloader_defaults["mock"] = True` (1000 training and 200
validation images of noise); take `TrainingConfig.for_cifar_minimal()` with task
`cifar_minimal`, n_envs 4, max_epochs and chunk_length 150, n_episodes 2 (its `--rounds`),
batch_size_per_env 64 (batches of 4 x 64 dealt out to the envs, the last partial one dropped:
192 training images per env-epoch; the validation batch of 200 dealt out as 50 each) and
compile_mode "off" (esper compiles nothing); call
`train_ppo_vectorized(**config.to_train_kwargs(), device="cpu", devices=["cpu"] * 4,
num_workers=0, quiet_analytics=True)` after `torch.set_num_threads(1)`, between two
`time.process_time()` readings, under `OMP_NUM_THREADS=1 MKL_NUM_THREADS=1`; env-epochs per
CPU-second is 1200 / its CPU seconds. Its telemetry stays on (its default), as esper records
every event. With --batches/--episode-length here, set n_episodes/max_epochs/chunk_length alike.

To compare: same machine, same threads, the two alternating (esper, esper-lite, esper, ...) for
at least 3 pairs while nothing else heavy runs, and the median of each side.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from esper.experiment import load
from esper.experiment.runner import run
from esper.leyline.config import ExperimentSpec

from timing import Timing, median, single_threaded_torch, timed

ANCHOR = Path(__file__).parents[1] / "experiments" / "esper_lite_anchor.yaml"


def anchor(args: argparse.Namespace, *settings: str) -> ExperimentSpec:
    """The anchor experiment, shortened as asked, with `settings` (`--set` style) applied."""
    shorten = [f"training.{key}={value}" for key, value in (
        ("batches", args.batches), ("episode_length", args.episode_length)) if value is not None]
    return load(ANCHOR, (*shorten, *settings))


def timed_run(spec: ExperimentSpec, directory: Path) -> Timing:
    """Time of one recorded run of `spec` (a fresh registry file in `directory`)."""
    return timed(lambda: run(spec, registry=directory / f"runs-{time.perf_counter_ns()}.db"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--mlflow", action="store_true", help="also time a run with MLflow on")
    parser.add_argument("--pooled", action="store_true",
                        help="also time the host with host.pooling every_block")
    parser.add_argument("--batches", type=int, help="PPO batches (training.batches), default 2")
    parser.add_argument("--episode-length", type=int, help="epochs per episode, default 150")
    args = parser.parse_args()
    single_threaded_torch()
    with tempfile.TemporaryDirectory() as tmp:
        rows = {"esper, MLflow off": anchor(args, "tracking.mlflow=false")}
        if args.mlflow:
            uri = f"sqlite:///{tmp}/mlflow.db"
            from esper.nissa.mlflow_store import MlflowStore  # imports mlflow

            once = timed(lambda: MlflowStore.open(uri))
            rows["esper, MLflow on"] = anchor(args, f"tracking.uri={uri}")
        if args.pooled:
            rows["esper, MLflow off, pooled host"] = anchor(
                args, "tracking.mlflow=false", "host.pooling=every_block")
        # untimed: what the first run of a process pays once (lazy imports such as the first
        # optimiser's torch._dynamo) stays out of every row
        run(load(ANCHOR, ("training.batches=1", "training.episode_length=1",
                          "tracking.mlflow=false")), registry=Path(tmp) / "warm-up.db")
        timings: dict[str, list[Timing]] = {label: [] for label in rows}
        for _ in range(args.repeats):  # interleaved
            for label, spec in rows.items():
                timings[label].append(timed_run(spec, Path(tmp)))
    training = next(iter(rows.values())).training
    env_epochs = training.envs * training.episode_length * training.batches
    print(f"{training.envs} envs x {training.episode_length} epochs x {training.batches} PPO "
          f"batches = {env_epochs} env-epochs; torch on 1 thread; medians of {args.repeats}")
    rates = {}
    for label, runs in timings.items():
        t = median(runs)
        rates[label] = env_epochs / t.cpu
        print(f"{label:<32}{t.cpu:7.2f} s CPU {t.wall:7.2f} s wall "
              f"{rates[label]:6.1f} env-epochs per CPU-second")
    if args.mlflow:
        print(f"{'MLflow once per process':<32}{once.cpu:7.2f} s CPU {once.wall:7.2f} s wall "
              "(import mlflow, create the store; not in the row above)")
    print(f"RESULT env_epochs_per_cpu_s={rates['esper, MLflow off']:.2f}")


if __name__ == "__main__":
    main()
