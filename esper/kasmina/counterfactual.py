"""Fused validation: the model's val loss/accuracy and every slot's counterfactual contribution
from one pass over the data.

K alpha configurations are stacked on the batch dimension: the current alphas; for each eligible
slot, that slot's alpha at 0 (its counterfactual); the committed model (fossilised seeds on, live
seeds at alpha 0: the model a user keeps); the host alone (every seed at alpha 0). Identical
configurations are evaluated once, so a model with no blended seed costs one forward per sample,
as before. In eval mode every layer (BatchNorm with running stats, GroupNorm, per-sample gates)
treats samples independently, so each configuration sees exactly what a separate evaluation would.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from esper.kasmina.host import MorphogeneticModel
from esper.leyline.stages import ACTIVE_STAGES, LIVE_STAGES, SeedStage


_SHARED_CONFIGS = ("current", "committed", "host")  # the configurations that are not a slot's


@dataclass(frozen=True)
class FusedValidation:
    """Validation of the current model plus its counterfactuals. Accuracies in percent."""

    loss: float  # mean cross-entropy with the current alphas
    accuracy: float
    # slot id -> acc(current) - acc(slot alpha 0), for every slot with a live seed; None when
    # the seed is not eligible (GERMINATED, TRAINING, or alpha still 0).
    contributions: dict[str, float | None]
    ablated_accuracy: dict[str, float]  # slot id -> accuracy with that slot's alpha at 0
    committed_accuracy: float  # fossilised seeds on, live seeds off
    host_accuracy: float  # every seed off
    n_configs: int  # K, distinct configurations evaluated per sample
    n_samples: int


def alpha_configurations(model: MorphogeneticModel) -> dict[str, dict[str, float]]:
    """The alpha configurations the fused validation measures, by name, each as slot id -> alpha
    for every blended slot (an active seed with alpha > 0; the others act as the host alone).

    Names: "current"; each eligible slot's id (that slot at 0: its counterfactual); "committed"
    (live seeds at 0, fossils as they are); "host" (every seed at 0).
    """
    blended = {slot.slot_id: slot.alpha for slot in model.seed_slots()
               if slot.stage in ACTIVE_STAGES and slot.alpha > 0.0}
    fossils = {slot.slot_id for slot in model.seed_slots() if slot.stage is SeedStage.FOSSILIZED}
    eligible = [slot.slot_id for slot in model.seed_slots() if slot.counterfactual_eligible]
    return {
        "current": blended,
        **{sid: {**blended, sid: 0.0} for sid in eligible},
        "committed": {sid: alpha if sid in fossils else 0.0 for sid, alpha in blended.items()},
        "host": dict.fromkeys(blended, 0.0),
    }


@dataclass(frozen=True)
class ValidationPlan:
    """The distinct alpha configurations of one model's fused validation, stacked as K rows."""

    named: dict[str, dict[str, float]]  # `alpha_configurations`
    index: dict[str, int]  # configuration name -> its row k; "current" is row 0
    n_configs: int  # K rows (distinct configurations, or more when padded)
    alphas: dict[str, torch.Tensor]  # blended slot id -> its alpha in each row (K,); {}: K = 1

    def overrides(self, batch: int) -> dict[str, torch.Tensor]:
        """Slot id -> per-sample alphas (K*B,) of a batch of B samples repeated K times."""
        return {sid: a.repeat_interleave(batch) for sid, a in self.alphas.items()}


def _distinct(named: dict[str, dict[str, float]]) -> list[tuple[float, ...]]:
    """The distinct alpha configurations among `named`, in order of first appearance."""
    return list(dict.fromkeys(tuple(config.values()) for config in named.values()))


def distinct_configurations(model: MorphogeneticModel) -> int:
    """How many distinct alpha configurations `model`'s fused validation evaluates (K)."""
    return len(_distinct(alpha_configurations(model)))


def plan_validation(model: MorphogeneticModel, device: torch.device,
                    n_configs: int | None = None) -> ValidationPlan:
    """`model`'s validation plan; with `n_configs`, padded to that many rows by repeating the
    current configuration (so that models with fewer configurations stack with others)."""
    named = alpha_configurations(model)
    distinct = _distinct(named)
    index = {name: distinct.index(tuple(config.values())) for name, config in named.items()}
    rows = len(distinct) if n_configs is None else n_configs
    assert rows >= len(distinct)
    distinct += [distinct[0]] * (rows - len(distinct))
    alphas = {sid: torch.tensor([config[j] for config in distinct], device=device)  # (K,)
              for j, sid in enumerate(named["current"])} if rows > 1 else {}
    return ValidationPlan(named, index, rows, alphas)


def fused_validate(
    model: MorphogeneticModel, images: torch.Tensor, labels: torch.Tensor, batch_size: int
) -> FusedValidation:
    """Evaluate `model` (in eval mode, no gradient) on images (N, C, H, W) and labels (N,).

    The model's train/eval mode is restored afterwards; nothing but the returned values changes.
    """
    assert images.shape[0] > 0, "empty validation set"
    device = images.device
    plan = plan_validation(model, device)
    n_configs = plan.n_configs  # K; configuration 0 is "current"
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
                logits = model(stacked, plan.overrides(batch) or None).view(n_configs, batch, -1)
                loss_sum += F.cross_entropy(logits[0], y, reduction="sum")  # (K, B, L) above
                correct += (logits.argmax(dim=-1) == y).sum(dim=1)
    finally:
        model.train(was_training)
    values = torch.cat([loss_sum[None], correct]).tolist()  # the one transfer
    return summarise_validation(model, plan, values[0], values[1:], images.shape[0])


def summarise_validation(model: MorphogeneticModel, plan: ValidationPlan, loss_sum: float,
                         correct: list[float], n: int) -> FusedValidation:
    """The `FusedValidation` of `model` from its summed current loss and the correct
    predictions of each of the plan's rows over `n` samples."""
    accuracy = {name: 100.0 * correct[k] / n for name, k in plan.index.items()}
    ablated = {sid: accuracy[sid] for sid in plan.named if sid not in _SHARED_CONFIGS}
    contributions: dict[str, float | None] = {
        slot.slot_id: (accuracy["current"] - ablated[slot.slot_id])
        if slot.slot_id in ablated else None
        for slot in model.seed_slots()
        if slot.stage in LIVE_STAGES
    }
    return FusedValidation(
        loss=loss_sum / n,
        accuracy=accuracy["current"],
        contributions=contributions,
        ablated_accuracy=ablated,
        committed_accuracy=accuracy["committed"],
        host_accuracy=accuracy["host"],
        n_configs=len(set(plan.index.values())),
        n_samples=n,
    )
