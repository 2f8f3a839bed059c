"""Vectorised gradient measurement: after backward, before the optimiser step.

One `torch._foreach_norm` over every gradient of interest and one device-to-host transfer give,
per parameter group, the global norm and the vanishing / exploding tensor counts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from esper.kasmina.state import GradientStats

VANISHING_NORM = 1e-7  # a parameter's gradient norm below this is vanishing
EXPLODING_NORM = 100.0  # above this (or not finite) is exploding


def gradient_health(n_tensors: int, n_vanishing: int, n_exploding: int) -> float:
    """clamp(1 - 0.5 vanishing_ratio - 0.8 exploding_ratio, 0, 1); 1.0 for an empty group."""
    if n_tensors == 0:
        return 1.0
    health = 1.0 - 0.5 * n_vanishing / n_tensors - 0.8 * n_exploding / n_tensors
    return min(max(health, 0.0), 1.0)


def norm_summary(norms: list[torch.Tensor], device: torch.device) -> torch.Tensor:
    """(3,) tensor [global norm, vanishing count, exploding count] of per-tensor norms."""
    if not norms:
        return torch.zeros(3, device=device)
    stacked = torch.stack(norms).float()  # (P,)
    exploding = (stacked > EXPLODING_NORM) | ~torch.isfinite(stacked)
    return torch.stack(
        [
            torch.linalg.vector_norm(stacked),
            (stacked < VANISHING_NORM).sum().float(),
            exploding.sum().float(),
        ]
    )


def measure_gradient_groups(groups: Sequence[Sequence[torch.nn.Parameter]]) -> list[GradientStats]:
    """Gradient stats of each parameter group (parameters without a gradient are skipped).

    All groups are measured in one `_foreach_norm` call per device and read back in one transfer.
    """
    grads = [[p.grad for p in group if p.grad is not None] for group in groups]
    flat = [g for group in grads for g in group]
    device = flat[0].device if flat else torch.device("cpu")
    norms: list[torch.Tensor] = [torch.zeros(())] * len(flat)
    # _foreach_norm needs tensors on one device: one call per device, results on `device`.
    by_device: dict[torch.device, list[int]] = {}
    for i, g in enumerate(flat):
        by_device.setdefault(g.device, []).append(i)
    for indices in by_device.values():
        for i, norm in zip(indices, torch._foreach_norm([flat[i] for i in indices])):
            norms[i] = norm.to(device)
    summaries = []
    start = 0
    for group in grads:
        summaries.append(norm_summary(norms[start : start + len(group)], device))
        start += len(group)
    values = torch.stack(summaries).tolist() if summaries else []  # the one transfer
    stats = []
    for group, (norm, vanishing, exploding) in zip(grads, values):
        n_vanishing, n_exploding = int(vanishing), int(exploding)
        stats.append(
            GradientStats(
                gradient_norm=norm,
                n_tensors=len(group),
                n_vanishing=n_vanishing,
                n_exploding=n_exploding,
                gradient_health=gradient_health(len(group), n_vanishing, n_exploding),
            )
        )
    return stats


def combined(stats: Sequence[GradientStats]) -> GradientStats:
    """The stats of the union of disjoint parameter groups: the global norm of their norms, the
    counts summed, the health of the summed counts."""
    n_tensors = sum(s.n_tensors for s in stats)
    n_vanishing = sum(s.n_vanishing for s in stats)
    n_exploding = sum(s.n_exploding for s in stats)
    return GradientStats(gradient_norm=math.sqrt(sum(s.gradient_norm ** 2 for s in stats)),
                         n_tensors=n_tensors, n_vanishing=n_vanishing, n_exploding=n_exploding,
                         gradient_health=gradient_health(n_tensors, n_vanishing, n_exploding))


@torch.no_grad()
def clip_grad_norms(groups: Sequence[Sequence[torch.Tensor]], max_norm: float) -> None:
    """`torch.nn.utils.clip_grad_norm_(group, max_norm)` of every parameter group, each clipped
    by its own total norm, with one `_foreach_norm` and one `_foreach_mul_` for all of them:
    the same values, tensor by tensor, in a few calls (the stacked env step clips each env's
    host apart)."""
    members = [[p.grad for p in group if p.grad is not None] for group in groups]
    grads = [g for member in members for g in member]
    if not grads:
        return
    norms = torch._foreach_norm(grads)
    coefficients: list[torch.Tensor] = []
    start = 0
    for member in members:
        if member:
            total = torch.linalg.vector_norm(torch.stack(norms[start:start + len(member)]))
            coefficient = torch.clamp(max_norm / (total + 1e-6), max=1.0)
            coefficients += [coefficient] * len(member)
            start += len(member)
    torch._foreach_mul_(grads, coefficients)
