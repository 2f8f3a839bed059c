"""Where stacking the envs pays: the host step per env against stacked, by host size.

`training.batch_envs: auto` stacks a CPU run's envs when the host costs at most
`AUTO_MAX_MULTIPLY_ADDS` convolution multiply-adds per image (esper/tolaria/stacked_step.py).
This script measures the figures behind that bound: for each host, the CPU time per env-epoch
of `run_epoch` env after env against `run_epoch_stacked` (training and fused validation, no
seed, no policy, no recording), on the same models, optimisers and batches, torch on one
thread, the two alternating so that drifting load hits both alike.

    OMP_NUM_THREADS=1 python benchmarks/stacking.py [--envs 4] [--epochs 3] [--repeats 3]

Hosts: the quickstart's and the esper-lite anchor's as committed, and 3x3 hosts of 8, 16 and 32
base channels on 32x32 synthetic images (512 training, 128 validation). About 2 minutes; the
machine's noise shows as a few percent between runs.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from esper.experiment import load
from esper.kasmina.host import MorphogeneticModel, conv_multiply_adds
from esper.kasmina.stacked import StackedModels
from esper.leyline.config import ExperimentSpec
from esper.tolaria.allocator import reuse_freed_memory
from esper.tolaria.batching import BatchSchedule
from esper.tolaria.datasets import load_task
from esper.tolaria.host_step import build_host_optimizer, run_epoch
from esper.tolaria.stacked_step import AUTO_MAX_MULTIPLY_ADDS, run_epoch_stacked

from timing import single_threaded_torch

EXPERIMENTS = Path(__file__).parents[1] / "experiments"
WIDE = ("task.dataset=synthetic", "task.synthetic.n_train=512", "task.synthetic.n_val=128",
        "host.n_blocks=3", "host.kernel=3")
HOSTS = {
    "quickstart": (EXPERIMENTS / "quickstart.yaml", ()),
    "anchor": (EXPERIMENTS / "esper_lite_anchor.yaml", ()),
    "3x3, 8 channels, 32x32": (EXPERIMENTS / "quickstart.yaml", (*WIDE, "host.base_channels=8")),
    "3x3, 16 channels, 32x32": (EXPERIMENTS / "quickstart.yaml",
                                (*WIDE, "host.base_channels=16")),
    "3x3, 32 channels, 32x32": (EXPERIMENTS / "quickstart.yaml",
                                (*WIDE, "host.base_channels=32")),
}


def per_env_epoch_ms(spec: ExperimentSpec, epochs: int, repeats: int) -> tuple[float, float]:
    """CPU ms per env-epoch of the host step env after env, and stacked (medians of repeats)."""
    data = load_task(spec.task, spec.seed)
    envs = spec.training.envs
    schedule = BatchSchedule(data.n_train, data.n_val, spec.task.batch_size, spec.seed,
                             spec.task.env_data, envs)
    models = [MorphogeneticModel(spec.host, spec.slots, spec.gates, image_shape=data.image_shape,
                                 num_classes=data.num_classes) for _ in range(envs)]
    optimizers = [build_host_optimizer(model, spec.host) for model in models]
    stack, clip = StackedModels(models), spec.host.grad_clip

    def one_by_one(epoch: int) -> None:
        for env_id, (model, optimizer) in enumerate(zip(models, optimizers)):
            run_epoch(model, optimizer, data, schedule, epoch, env_id, clip)

    def stacked(epoch: int) -> None:
        run_epoch_stacked(stack, optimizers, data, schedule, epoch, clip,
                          env_ids=list(range(envs)), measured=[True] * envs)

    times: dict[str, list[float]] = {"per-env": [], "stacked": []}
    one_by_one(-1)  # untimed: the first epoch's one-time costs (allocations, lazy set-up)
    stacked(-1)
    for _ in range(repeats):
        for label, step in (("per-env", one_by_one), ("stacked", stacked)):
            started = time.process_time()
            for epoch in range(epochs):
                step(epoch)
            times[label].append((time.process_time() - started) * 1000.0 / (epochs * envs))
    own, together = (sorted(values)[len(values) // 2] for values in times.values())
    return own, together


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    single_threaded_torch()
    reuse_freed_memory()  # as a stacking run does
    print(f"{args.envs} envs, CPU ms per env-epoch (medians of {args.repeats} x {args.epochs} "
          f"epochs); auto stacks a CPU run up to {AUTO_MAX_MULTIPLY_ADDS:,} multiply-adds")
    print(f"{'host':<26}{'multiply-adds':>14}{'per-env':>10}{'stacked':>10}{'speedup':>9}")
    for label, (path, settings) in HOSTS.items():
        spec = load(path, (*settings, f"training.envs={args.envs}", "training.batch_envs=true"))
        data_shape = load_task(spec.task, spec.seed).image_shape
        work = conv_multiply_adds(spec.host, data_shape[0], data_shape[1])
        own, together = per_env_epoch_ms(spec, args.epochs, args.repeats)
        print(f"{label:<26}{work:>14,}{own:>10.1f}{together:>10.1f}{own / together:>8.2f}x")


if __name__ == "__main__":
    main()
