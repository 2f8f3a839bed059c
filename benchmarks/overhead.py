"""Framework overhead of `esper run` against a plain PyTorch loop (docs/architecture.md §8).

Both train and validate the same cnn host on the same digits data, with the same batch order,
for the same envs x episodes x epochs. The esper side is a full `run` (heuristic policy,
telemetry hub, registry and MLflow recording) with its envs stepped one after another
(`training.batch_envs=false`) and no reference host (the shaped reward); the plain side is a
bare loop over `CNNHost`, env after env.

    python benchmarks/overhead.py [--repeats 3]

Prints, from one process, ratios of CPU time (the work each side did, robust to other load on
a shared machine; see benchmarks/timing.py) with the wall-time ratio beside them:
- overhead ratio esper / plain with no seed germinated (pure framework cost; target <= 1.10);
- env-epochs per second of both, and of the quickstart with seeds growing (seed training and
  the fused counterfactual validation are real extra work, so that ratio is shown apart);
- the cost of the MLflow sink: the no-seed run with MLflow on (the default, measured above)
  against MLflow off (target: under 5% of run time). MLflow records into a temporary store;
  the one-time cost of a process (importing mlflow, creating the store) is shown apart.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch.nn import functional as F

from esper.experiment import load
from esper.experiment.runner import run
from esper.kasmina.host import CNNHost
from esper.leyline.config import ExperimentSpec
from esper.simic.determinism import seed_everything
from esper.tolaria.batching import BatchSchedule
from esper.tolaria.datasets import load_task

from timing import Timing, median, ratio_line, single_threaded_torch, timed

QUICKSTART = Path(__file__).parents[1] / "experiments" / "quickstart.yaml"
# The plain loop's work in an esper run (`--set` style): the heuristic never reaches its
# germination epoch, and the shaped reward trains no reference host (escrow, the default,
# trains one per env: twice the host work).
NO_SEEDS = ("policy.heuristic.min_epoch=1000000", "reward.mode=shaped")
# The plain loop trains env after env: the framework's cost is measured on the same computation.
PER_ENV = "training.batch_envs=false"


def plain_loop(spec: ExperimentSpec) -> Timing:
    """Time of the same host training + validation in a bare PyTorch loop."""
    seed_everything(spec.seed)
    data = load_task(spec.task, spec.seed)
    training = spec.training
    schedule = BatchSchedule(data.n_train, data.n_val, spec.task.batch_size, spec.seed,
                             spec.task.env_data, training.envs)

    def train() -> None:
        for batch in range(training.batches):
            hosts = [CNNHost(spec.host, data.image_shape[0], data.image_shape[1], data.num_classes)
                     for _ in range(training.envs)]
            optimizers = [torch.optim.SGD(h.parameters(), lr=spec.host.lr,
                                          momentum=spec.host.momentum,
                                          weight_decay=spec.host.weight_decay) for h in hosts]
            for epoch in range(training.episode_length):
                for env_id, (host, optimizer) in enumerate(zip(hosts, optimizers)):
                    host.train()
                    step = batch * training.episode_length + epoch
                    for index in schedule.train_batches(step, env_id):
                        optimizer.zero_grad(set_to_none=True)
                        logits = host(data.train_images[index])
                        loss = F.cross_entropy(logits, data.train_labels[index])
                        loss.backward()
                        torch.nn.utils.clip_grad_norm_(host.parameters(), spec.host.grad_clip)
                        optimizer.step()
                    host.eval()
                    with torch.no_grad():
                        logits = host(data.val_images)
                        F.cross_entropy(logits, data.val_labels).item()
                        (logits.argmax(1) == data.val_labels).float().mean().item()

    return timed(train)


def esper_run(spec: ExperimentSpec, directory: Path) -> Timing:
    """Time of a full recorded `esper run` of `spec`."""
    return timed(lambda: run(spec, registry=directory / f"runs-{time.perf_counter_ns()}.db"))


def with_tracking(spec: ExperimentSpec, uri: str, mlflow: bool) -> ExperimentSpec:
    return replace(spec, tracking=replace(spec.tracking, uri=uri, mlflow=mlflow))


def sink_work(directory: Path, uri: str) -> Timing:
    """MLflow work of the newest run recorded in `directory`: its events replayed through the
    MLflow sink (as `esper sync` does), i.e. what the sink's threads did during the run."""
    from esper.nissa.mlflow_sync import sync_run
    from esper.registry import Registry

    newest = max(directory.glob("runs-*.db"), key=lambda path: path.stat().st_mtime)
    with Registry.open(newest) as registry:
        run_id = registry.runs()[0].run_id
        return timed(lambda: sync_run(registry, run_id, uri=uri, force=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    single_threaded_torch()
    grown = load(QUICKSTART, (PER_ENV,))
    bare = load(QUICKSTART, (*NO_SEEDS, PER_ENV))
    env_epochs = grown.training.envs * grown.training.batches * grown.training.episode_length
    plain, framework, no_mlflow, seeded = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{tmp}/mlflow.db"
        from esper.nissa.mlflow_store import MlflowStore  # imports mlflow

        once = timed(lambda: MlflowStore.open(uri))
        bare, grown = with_tracking(bare, uri, True), with_tracking(grown, uri, True)
        for _ in range(args.repeats):  # interleaved, so drifting machine load hits all four
            plain.append(plain_loop(bare))
            framework.append(esper_run(bare, Path(tmp)))
            no_mlflow.append(esper_run(with_tracking(bare, uri, False), Path(tmp)))
            seeded.append(esper_run(grown, Path(tmp)))
        work = sink_work(Path(tmp), uri)  # of the last quickstart run (seeds)
    p, f, n, s = (median(x) for x in (plain, framework, no_mlflow, seeded))
    print(f"env-epochs per run: {env_epochs}; torch on 1 thread; medians of {args.repeats}")
    for label, t in (("plain PyTorch loop", p), ("esper run, no seeds", f),
                     ("esper run, no seeds, no MLflow", n), ("esper run, quickstart (seeds)", s)):
        print(f"{label:<31}{t.cpu:6.2f} s CPU  {t.wall:6.2f} s wall  "
              f"{env_epochs / t.wall:5.1f} env-epochs/s")
    print(ratio_line("overhead ratio (no seeds)", f, p, "target <= 1.10"))
    print(ratio_line("ratio with seeds growing", s, p, "(seed training, counterfactuals)"))
    print(ratio_line("MLflow sink on / off", f, n, "target < 1.05"))
    print(f"{'MLflow sink work per run':<31}{work.cpu:6.2f} s CPU  ({work.cpu / s.cpu:.1%} of the "
          "quickstart run; its events replayed through the sink)")
    print(f"{'MLflow once per process':<31}{once.wall:6.2f} s  (import mlflow, create the store)")


if __name__ == "__main__":
    main()
