"""Train one host epoch and validate it (with counterfactuals): the work of one env step."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from esper.kasmina.counterfactual import FusedValidation, fused_validate
from esper.kasmina.host import MorphogeneticModel
from esper.kasmina.gradients import clip_grad_norms
from esper.kasmina.optim import SGD, Optimizer, step_together
from esper.kasmina.state import GradientStats
from esper.leyline.config import HostConfig
from esper.tolaria.batching import BatchSchedule
from esper.tolaria.datasets import TaskData


@dataclass(frozen=True)
class TrainResult:
    """One training epoch. Accuracy in percent."""

    loss: float  # mean cross-entropy over the epoch's samples
    accuracy: float
    samples: int
    gradients: dict[str, GradientStats]  # slot id -> seed stats of the measured batch


@dataclass(frozen=True)
class EpochResult:
    """One env step: a training epoch and the fused validation that follows it."""

    train_loss: float
    train_accuracy: float  # percent, 0-100
    val_loss: float
    val_accuracy: float  # percent, 0-100
    contributions: dict[str, float | None]  # slot id -> counterfactual contribution
    ablated_accuracy: dict[str, float]
    committed_accuracy: float  # percent: fossilised seeds on, live seeds off
    host_accuracy: float  # percent: every seed off
    gradients: dict[str, GradientStats]

    @classmethod
    def of(cls, train: TrainResult, val: FusedValidation) -> EpochResult:
        """The step made of training epoch `train` and the validation `val` after it."""
        return cls(train_loss=train.loss, train_accuracy=train.accuracy, val_loss=val.loss,
                   val_accuracy=val.accuracy, contributions=val.contributions,
                   ablated_accuracy=val.ablated_accuracy,
                   committed_accuracy=val.committed_accuracy, host_accuracy=val.host_accuracy,
                   gradients=train.gradients)


def build_host_optimizer(model: MorphogeneticModel, host: HostConfig) -> SGD:
    """SGD over the host's parameters only (every seed has its own optimiser)."""
    return SGD(model.host_parameters(), lr=host.lr, momentum=host.momentum,
               weight_decay=host.weight_decay)


def train_epoch(
    model: MorphogeneticModel,
    host_optimizer: SGD,
    images: torch.Tensor,
    labels: torch.Tensor,
    batches: Sequence[torch.Tensor],
    grad_clip: float,
    measure_gradients: bool = True,
) -> TrainResult:
    """Train on `batches` (index tensors into images (N, C, H, W) and labels (N,)).

    Per batch: forward, cross-entropy, backward, clip the host's and each seed's gradients
    separately, step. With `measure_gradients`, the last batch is measured after backward and
    before the steps (`model.measure_gradients`, one vectorised pass) and checked for
    gradient-isolation leaks. Loss and accuracy stay on the device until the end of the epoch.
    """
    model.train()
    host_params = model.host_parameters()
    loss_sum = torch.zeros((), device=images.device)
    correct = torch.zeros((), device=images.device)
    samples = 0
    gradients: dict[str, GradientStats] = {}
    for i, index in enumerate(batches):
        x, y = images[index], labels[index]  # (B, C, H, W), (B,)
        measure = measure_gradients and i == len(batches) - 1
        prepare_step(model, host_optimizer, measure)
        logits = model(x)  # (B, classes)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        (stats,) = take_steps([model], [host_optimizer], [host_params], grad_clip, [measure])
        gradients = stats or gradients
        loss_sum += loss.detach() * y.shape[0]
        correct += (logits.detach().argmax(dim=1) == y).sum()
        samples += y.shape[0]
    loss_total, correct_total = torch.stack([loss_sum, correct.float()]).tolist()
    return TrainResult(
        loss=loss_total / max(samples, 1),
        accuracy=100.0 * correct_total / max(samples, 1),
        samples=samples,
        gradients=gradients,
    )


def prepare_step(model: MorphogeneticModel, host_optimizer: Optimizer, measure: bool) -> None:
    """Before a training batch's forward: zero the host's and the seeds' gradients, and arm
    the isolation checks of the batch that will be measured."""
    host_optimizer.zero_grad()
    for slot in model.seed_slots():
        slot.zero_grad_seed()
    if measure:
        model.arm_isolation_checks()


def take_steps(models: Sequence[MorphogeneticModel], host_optimizers: Sequence[SGD],
               host_params: Sequence[list[torch.nn.Parameter]], grad_clip: float,
               measure: Sequence[bool]) -> list[dict[str, GradientStats] | None]:
    """After backward, for each model (one env's, or every env's of a stacked step): measure
    its gradients where `measure` says (slot id -> stats; None where not measured), clip its
    host's (`host_params`, its `host_parameters()` read once per epoch) and each seed's
    gradients separately, and step every optimiser. The hosts are clipped and stepped in
    foreach passes over all models, with the values of one `clip_grad_norm_` and one
    `SGD.step` per model."""
    gradients = [model.measure_gradients() if measured else None
                 for model, measured in zip(models, measure)]
    clip_grad_norms(host_params, grad_clip)
    for model in models:
        for slot in model.seed_slots():
            slot.seed_step()
    step_together(host_optimizers)
    return gradients


def validate(model: MorphogeneticModel, data: TaskData, batch_size: int,
             indices: torch.Tensor | None = None) -> FusedValidation:
    """Fused validation (current alphas, each eligible slot's alpha at 0, the committed model and
    the host alone) on the validation set, or on its `indices` when envs split the data."""
    images, labels = data.val_images, data.val_labels
    if indices is not None:
        images, labels = images[indices], labels[indices]
    return fused_validate(model, images, labels, batch_size)


def run_epoch(
    model: MorphogeneticModel,
    host_optimizer: SGD,
    data: TaskData,
    schedule: BatchSchedule,
    epoch: int,
    env_id: int,
    grad_clip: float,
    val_batch_size: int | None = None,
    measure_gradients: bool = True,
) -> EpochResult:
    """Train env `env_id`'s share of `epoch` in the shared order, then validate it."""
    train = train_epoch(model, host_optimizer, data.train_images, data.train_labels,
                        schedule.train_batches(epoch, env_id), grad_clip, measure_gradients)
    val = validate(model, data, val_batch_size or schedule.batch_size, schedule.val_indices(env_id))
    return EpochResult.of(train, val)
