"""A tiny digits experiment for tolaria tests: data, model, optimiser, batch schedule."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from esper.experiment import spec_from_dict
from esper.kasmina.host import MorphogeneticModel
from esper.kasmina.optim import SGD
from esper.leyline.config import ExperimentSpec
from esper.tolaria.batching import BatchSchedule
from esper.tolaria.datasets import TaskData, load_task
from esper.tolaria.host_step import build_host_optimizer


@dataclass
class Env:
    spec: ExperimentSpec
    data: TaskData
    model: MorphogeneticModel
    optimizer: SGD
    schedule: BatchSchedule


def tiny_env(seed: int = 0, **sections: Any) -> Env:
    """Digits subset (256 train / 128 val), 2-block 8-channel host, slots r0c0 and r0c1."""
    document: dict[str, Any] = {
        "name": "tolaria-test",
        "seed": seed,
        "task": {"max_train": 256, "max_val": 128, "batch_size": 32},
        "host": {"n_blocks": 2, "base_channels": 8, "lr": 0.05},
        "slots": {"enabled": ["r0c0", "r0c1"]},
        **sections,
    }
    spec = spec_from_dict(document)
    data = load_task(spec.task, spec.seed)
    torch.manual_seed(seed)
    model = MorphogeneticModel(spec.host, spec.slots, spec.gates, image_shape=data.image_shape,
                               num_classes=data.num_classes)
    schedule = BatchSchedule(data.n_train, data.n_val, spec.task.batch_size, spec.seed,
                             spec.task.env_data, spec.training.envs)
    return Env(spec, data, model, build_host_optimizer(model, spec.host), schedule)
