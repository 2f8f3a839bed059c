"""Fused validation: the model's val loss/accuracy and every slot's counterfactual contribution
from one pass over the data.

K alpha configurations are stacked on the batch dimension: configuration 0 uses the current
alphas, configuration j forces eligible slot j's alpha to 0. In eval mode every layer (BatchNorm
with running stats, GroupNorm, per-sample gates) treats samples independently, so each
configuration sees exactly what a separate evaluation would.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from esper.kasmina.host import MorphogeneticModel
from esper.kasmina.slot import PRUNABLE_STAGES


@dataclass(frozen=True)
class FusedValidation:
    """Validation of the current model plus its counterfactuals. Accuracies in percent."""

    loss: float  # mean cross-entropy with the current alphas
    accuracy: float
    # slot id -> acc(current) - acc(slot alpha 0), for every slot with a live seed; None when
    # the seed is not eligible (GERMINATED, TRAINING, or alpha still 0).
    contributions: dict[str, float | None]
    ablated_accuracy: dict[str, float]  # slot id -> accuracy with that slot's alpha at 0
    n_configs: int  # K, configurations evaluated per sample
    n_samples: int


def fused_validate(
    model: MorphogeneticModel, images: torch.Tensor, labels: torch.Tensor, batch_size: int
) -> FusedValidation:
    """Evaluate `model` (in eval mode, no gradient) on images (N, C, H, W) and labels (N,).

    The model's train/eval mode is restored afterwards; nothing but the returned values changes.
    """
    assert images.shape[0] > 0, "empty validation set"
    eligible = [slot.slot_id for slot in model.seed_slots() if slot.counterfactual_eligible]
    n_configs = 1 + len(eligible)  # K
    device = images.device
    alphas = {}
    for j, sid in enumerate(eligible):
        config_alphas = torch.full((n_configs,), model.slot(sid).alpha, device=device)  # (K,)
        config_alphas[j + 1] = 0.0
        alphas[sid] = config_alphas
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros(n_configs, device=device)  # (K,)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, images.shape[0], batch_size):
                x = images[start : start + batch_size]  # (B, C, H, W)
                y = labels[start : start + batch_size]  # (B,)
                batch = x.shape[0]
                stacked = x.repeat(n_configs, 1, 1, 1)  # (K*B, C, H, W), config k at rows kB..
                overrides = {sid: a.repeat_interleave(batch) for sid, a in alphas.items()}
                logits = model(stacked, overrides or None).view(n_configs, batch, -1)  # (K, B, L)
                loss_sum += F.cross_entropy(logits[0], y, reduction="sum")
                correct += (logits.argmax(dim=-1) == y).sum(dim=1)
    finally:
        model.train(was_training)
    n = images.shape[0]
    values = torch.cat([loss_sum[None], correct]).tolist()  # the one transfer
    accuracies = [100.0 * c / n for c in values[1:]]
    ablated = {sid: accuracies[j + 1] for j, sid in enumerate(eligible)}
    contributions: dict[str, float | None] = {
        slot.slot_id: (accuracies[0] - ablated[slot.slot_id]) if slot.slot_id in ablated else None
        for slot in model.seed_slots()
        if slot.stage in PRUNABLE_STAGES
    }
    return FusedValidation(
        loss=values[0] / n,
        accuracy=accuracies[0],
        contributions=contributions,
        ablated_accuracy=ablated,
        n_configs=n_configs,
        n_samples=n,
    )
