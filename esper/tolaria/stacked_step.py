"""One env step of every env at once (`training.batch_envs`): the envs' host epochs trained as
one stacked computation (`StackedModels`), then their fused validations as one.

Each env keeps its own model, optimiser, clipping, gradient measurement and isolation checks
(`prepare_step`, `take_steps`); only the forward and backward are shared. The envs' losses are
summed before backward, which gives each env's parameters exactly its own loss's gradient.
The results equal `run_epoch` per env up to float rounding.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.nn import functional as F

from esper.kasmina.counterfactual import (FusedValidation, distinct_configurations,
                                          plan_validation, summarise_validation)
from esper.kasmina.host import conv_multiply_adds
from esper.kasmina.optim import SGD
from esper.kasmina.stacked import StackedModels
from esper.kasmina.state import GradientStats
from esper.leyline.config import HostConfig, TrainingConfig
from esper.tolaria.batching import BatchSchedule
from esper.tolaria.datasets import TaskData
from esper.tolaria.host_step import EpochResult, TrainResult, prepare_step, take_steps


def can_stack(schedule: BatchSchedule) -> bool:
    """Whether every env's training batches and validation share have the same sizes, as one
    stacked computation needs (always with ``env_data: full``; with ``split``, when the data
    divides evenly enough). The sizes are the same every epoch: one check holds for a run."""
    if schedule.env_data == "full":
        return True
    sizes = {tuple(len(b) for b in schedule.train_batches(0, e)) for e in range(schedule.envs)}
    val_sizes = {_rows(schedule.val_indices(e)) for e in range(schedule.envs)}
    return len(sizes) == 1 and len(val_sizes) == 1


# `training.batch_envs: auto` stacks a CPU run's envs when its host costs at most this many
# convolution multiply-adds per image. benchmarks/stacking.py times `run_epoch` per env against
# `run_epoch_stacked` (2-core CPU, torch on one thread, 4 envs): 0.04M (the quickstart) 1.2-1.4x
# faster stacked, 0.05M (the anchor) 1.8x, 0.8M 1.1-1.2x, 2.8M 0.98-1.03x, 10M 0.93-1.04x: wide
# hosts gain nothing (their grouped convolutions are no faster than separate ones) and would
# hold N envs' activations at once. On a GPU auto always stacks: one step instead of N saves
# kernel launches (expected; not yet measured on a GPU).
AUTO_MAX_MULTIPLY_ADDS = 1_000_000


def stacks_envs(training: TrainingConfig, host: HostConfig, image_shape: tuple[int, int, int],
                device: torch.device) -> bool:
    """Whether the run's envs step as one stacked computation: `training.batch_envs`, with
    ``auto`` decided from the host's size and the device (deterministic for a given spec)."""
    if training.envs < 2 or training.batch_envs is False:
        return False
    if training.batch_envs is True or device.type != "cpu":
        return True
    return conv_multiply_adds(host, image_shape[0], image_shape[1]) <= AUTO_MAX_MULTIPLY_ADDS


def _rows(indices: torch.Tensor | None) -> int | None:
    """How many rows an env's validation share has (None: the whole set)."""
    return None if indices is None else len(indices)


def _inputs(images: torch.Tensor, labels: torch.Tensor, indices: Sequence[torch.Tensor | None],
            shared: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The stacked input of one batch and the labels (B, N): every env's rows `indices[e]`
    (None: all rows); shared envs read the same images once."""
    def pick(index: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        return (images, labels) if index is None else (images[index], labels[index])

    if shared:  # gathered once for every env
        x, y = pick(indices[0])
        return x, y[:, None].expand(-1, len(indices))
    picked = [pick(index) for index in indices]
    return (torch.cat([x for x, _ in picked], dim=1),
            torch.stack([y for _, y in picked], dim=1))


def train_epoch_stacked(
    stack: StackedModels,
    optimizers: Sequence[SGD],
    images: torch.Tensor,
    labels: torch.Tensor,
    batches: Sequence[Sequence[torch.Tensor]],
    shared: bool,
    grad_clip: float,
    measured: Sequence[bool],
) -> list[TrainResult]:
    """`train_epoch` of every model of `stack` at once; `batches[m]` are model m's index
    batches (of the same sizes for every model; the same batches when `shared`); the last
    batch's gradients are measured on the models `measured` says."""
    models = stack.members()
    envs = len(models)
    stack.train()
    host_params = [model.host_parameters() for model in models]
    loss_sum = torch.zeros(envs, device=images.device)  # (N,)
    correct = torch.zeros(envs, device=images.device)
    samples = 0
    gradients: list[dict[str, GradientStats]] = [{} for _ in models]
    n_batches = len(batches[0])
    for i, indices in enumerate(zip(*batches)):  # lazily: a timed schedule marks each batch asked
        last = i == n_batches - 1
        x, y = _inputs(images, labels, indices, shared)  # y: (B, N)
        for model, optimizer, measure in zip(models, optimizers, measured):
            prepare_step(model, optimizer, last and measure)
        logits = stack(x, per_env_input=not shared)  # (B, N, classes)
        losses = F.cross_entropy(logits.transpose(1, 2), y, reduction="none").mean(dim=0)  # (N,)
        losses.sum().backward()
        stats = take_steps(models, optimizers, host_params, grad_clip,
                           [last and measure for measure in measured])
        gradients = [new or old for new, old in zip(stats, gradients)]
        loss_sum += losses.detach() * y.shape[0]
        correct += (logits.detach().argmax(dim=-1) == y).sum(dim=0)
        samples += y.shape[0]
    totals = torch.stack([loss_sum, correct]).tolist()  # the one transfer
    return [TrainResult(loss=loss / max(samples, 1), accuracy=100.0 * hits / max(samples, 1),
                        samples=samples, gradients=gradients[e])
            for e, (loss, hits) in enumerate(zip(*totals))]


def validate_stacked(stack: StackedModels, images: torch.Tensor, labels: torch.Tensor,
                     indices: Sequence[torch.Tensor | None], shared: bool,
                     batch_size: int) -> list[FusedValidation]:
    """`fused_validate` of every env at once on its validation rows `indices[e]` (None: all;
    of one size for every env). Envs with fewer alpha configurations than the most are padded
    with their current one, so all stack as K rows."""
    models = stack.members()
    x_all, y_all = _inputs(images, labels, indices, shared)  # y_all: (n, N)
    n = y_all.shape[0]
    assert n > 0, "empty validation set"
    device = images.device
    widest = max(distinct_configurations(model) for model in models)
    plans = [plan_validation(model, device, widest) for model in models]
    loss_sum = torch.zeros(len(models), device=device)  # (N,)
    correct = torch.zeros(widest, len(models), device=device)  # (K, N)
    was_training = stack.training
    stack.eval()
    try:
        with torch.no_grad():
            for start in range(0, n, batch_size):
                x, y = x_all[start:start + batch_size], y_all[start:start + batch_size]
                batch = y.shape[0]
                overrides = [plan.overrides(batch) or None for plan in plans]
                logits = stack(x.repeat(widest, 1, 1, 1), not shared, overrides)  # (K*B, N, L)
                logits = logits.view(widest, batch, len(models), -1)  # (K, B, N, L)
                loss_sum += F.cross_entropy(logits[0].transpose(1, 2), y,
                                            reduction="none").sum(dim=0)
                correct += (logits.argmax(dim=-1) == y).sum(dim=1)
    finally:
        stack.train(was_training)
    losses, hits = loss_sum.tolist(), correct.T.tolist()  # (N,), (N, K)
    return [summarise_validation(model, plan, losses[e], hits[e], n)
            for e, (model, plan) in enumerate(zip(models, plans))]


def run_epoch_stacked(
    stack: StackedModels,
    optimizers: Sequence[SGD],
    data: TaskData,
    schedule: BatchSchedule,
    epoch: int,
    grad_clip: float,
    env_ids: Sequence[int],
    measured: Sequence[bool],
) -> list[EpochResult]:
    """`run_epoch` of every model of `stack` at once: model m trains and validates on env
    `env_ids[m]`'s share of `epoch` (`can_stack` must hold), its gradients measured where
    `measured[m]`. A reference host shares its env's batches, built once."""
    shared = schedule.env_data == "full"
    batches = {e: schedule.train_batches(epoch, e) for e in dict.fromkeys(env_ids)}
    trains = train_epoch_stacked(stack, optimizers, data.train_images, data.train_labels,
                                 [batches[e] for e in env_ids], shared, grad_clip, measured)
    vals = validate_stacked(stack, data.val_images, data.val_labels,
                            [schedule.val_indices(e) for e in env_ids], shared, schedule.batch_size)
    return [EpochResult.of(train, val) for train, val in zip(trains, vals)]
