"""Framework overhead of `esper run` against a plain PyTorch loop (DESIGN.md section 8).

Both train and validate the same cnn host on the same digits data, with the same batch order,
for the same envs x episodes x epochs. The esper side is a full `run` (heuristic policy,
telemetry hub, registry and MLflow recording); the plain side is a bare loop over `CNNHost`.

    python benchmarks/overhead.py [--repeats 3]

Prints, from one process (the machine is shared and noisy: only ratios measured side by side
mean anything):
- overhead ratio esper / plain with no seed germinated (pure framework cost; target <= 1.10);
- env-epochs per second of both, and of the quickstart with seeds growing (seed training and
  the fused counterfactual validation are real extra work, so that ratio is shown apart);
- the cost of the MLflow sink: the no-seed run with MLflow on (the default, measured above)
  against MLflow off (target: under 5% of run time). MLflow records into a temporary store;
  the one-time cost of a process (importing mlflow, creating the store) is shown apart.
"""

from __future__ import annotations

import argparse
import statistics
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

QUICKSTART = Path(__file__).parents[1] / "experiments" / "quickstart.yaml"


def plain_loop(spec: ExperimentSpec) -> float:
    """Seconds for the same host training + validation in a bare PyTorch loop."""
    seed_everything(spec.seed)
    data = load_task(spec.task, spec.seed)
    training = spec.training
    schedule = BatchSchedule(data.n_train, data.n_val, spec.task.batch_size, spec.seed,
                             spec.task.env_data, training.envs)
    start = time.perf_counter()
    for batch in range(training.batches):
        hosts = [CNNHost(spec.host, data.image_shape[0], data.image_shape[1], data.num_classes)
                 for _ in range(training.envs)]
        optimizers = [torch.optim.SGD(h.parameters(), lr=spec.host.lr, momentum=spec.host.momentum,
                                      weight_decay=spec.host.weight_decay) for h in hosts]
        for epoch in range(training.episode_length):
            for env_id, (host, optimizer) in enumerate(zip(hosts, optimizers)):
                host.train()
                for index in schedule.train_batches(batch * training.episode_length + epoch, env_id):
                    optimizer.zero_grad(set_to_none=True)
                    loss = F.cross_entropy(host(data.train_images[index]), data.train_labels[index])
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(host.parameters(), spec.host.grad_clip)
                    optimizer.step()
                host.eval()
                with torch.no_grad():
                    logits = host(data.val_images)
                    F.cross_entropy(logits, data.val_labels).item()
                    (logits.argmax(1) == data.val_labels).float().mean().item()
    return time.perf_counter() - start


def esper_run(spec: ExperimentSpec, directory: Path) -> float:
    """Seconds for a full recorded `esper run` of `spec` (data loading excluded like above)."""
    start = time.perf_counter()
    run(spec, registry=directory / f"runs-{time.perf_counter_ns()}.db")
    return time.perf_counter() - start


def with_tracking(spec: ExperimentSpec, uri: str, mlflow: bool) -> ExperimentSpec:
    return replace(spec, tracking=replace(spec.tracking, uri=uri, mlflow=mlflow))


def sink_work(directory: Path, uri: str) -> float:
    """Seconds of MLflow work of the newest run recorded in `directory`: its events replayed
    through the MLflow sink (as `esper sync` does), i.e. what the sink's thread did during the
    run. Unlike the on/off difference, hardly disturbed by other load on the machine."""
    from esper.nissa.mlflow_sync import sync_run
    from esper.registry import Registry

    newest = max(directory.glob("runs-*.db"), key=lambda path: path.stat().st_mtime)
    with Registry.open(newest) as registry:
        start = time.perf_counter()
        sync_run(registry, registry.runs()[0].run_id, uri=uri, force=True)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    grown = load(QUICKSTART)
    # Same work without seeds: the heuristic never reaches its germination epoch.
    bare = replace(grown, policy=replace(grown.policy, heuristic=replace(
        grown.policy.heuristic, min_epoch=10**6)))
    env_epochs = grown.training.envs * grown.training.batches * grown.training.episode_length
    plain, framework, no_mlflow, seeded = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{tmp}/mlflow.db"
        start = time.perf_counter()
        from esper.nissa.mlflow_store import MlflowStore  # imports mlflow

        MlflowStore.open(uri)
        once = time.perf_counter() - start
        bare, grown = with_tracking(bare, uri, True), with_tracking(grown, uri, True)
        for _ in range(args.repeats):  # interleaved, so drifting machine load hits all four
            plain.append(plain_loop(bare))
            framework.append(esper_run(bare, Path(tmp)))
            no_mlflow.append(esper_run(with_tracking(bare, uri, False), Path(tmp)))
            seeded.append(esper_run(grown, Path(tmp)))
        work = sink_work(Path(tmp), uri)  # of the last quickstart run (seeds)
    p, f, n, s = (statistics.median(x) for x in (plain, framework, no_mlflow, seeded))
    print(f"env-epochs per run:            {env_epochs}")
    print(f"plain PyTorch loop:            {p:6.2f} s  {env_epochs / p:6.1f} env-epochs/s")
    print(f"esper run, no seeds:           {f:6.2f} s  {env_epochs / f:6.1f} env-epochs/s")
    print(f"esper run, quickstart (seeds): {s:6.2f} s  {env_epochs / s:6.1f} env-epochs/s")
    print(f"overhead ratio (no seeds):     {f / p:6.3f}  (target <= 1.10)")
    print(f"ratio with seeds growing:      {s / p:6.3f}  (includes seed training and counterfactuals)")
    print(f"esper run, no seeds, no MLflow:{n:6.2f} s")
    print(f"MLflow sink on / off:          {f / n:6.3f}  ({(f - n) / f:+.1%} of run time; "
          "target < 5%)")
    print(f"MLflow sink work per run:      {work:6.2f} s  ({work / s:.1%} of the quickstart run; "
          "its events replayed through the sink)")
    print(f"MLflow once per process:       {once:6.2f} s  (import mlflow, create the store)")


if __name__ == "__main__":
    main()
