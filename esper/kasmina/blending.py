"""Blending a seed's output into the host activation, and the learned per-sample blend gate."""

from __future__ import annotations

import torch
from torch import nn

from esper.leyline.stages import AlphaAlgorithm


class BlendGate(nn.Module):
    """g(x) = sigmoid(w . avgpool(x) + b): one gate value per sample, starting at 0.5."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.proj = nn.Linear(channels, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = torch.sigmoid(self.proj(x.mean(dim=(2, 3))))  # (N, 1)
        return g[:, :, None, None]  # (N, 1, 1, 1)


class Seed(nn.Module):
    """A germinated seed: the blueprint module and, for the GATE algorithm, its blend gate."""

    def __init__(self, blueprint: nn.Module, gate: BlendGate | None) -> None:
        super().__init__()
        self.blueprint = blueprint
        self.gate = gate


def blend(
    algorithm: AlphaAlgorithm,
    host: torch.Tensor,
    seed_input: torch.Tensor,
    seed_output: torch.Tensor,
    alpha: float | torch.Tensor,
    gate: torch.Tensor | None,
) -> tuple[torch.Tensor, float | torch.Tensor]:
    """Blend `seed_output` into `host`; alpha is a float or a per-sample (N, 1, 1, 1) tensor.

    Returns (output, host_factor) where host_factor = d output / d host along the host path
    alone; with an isolated seed the host's whole gradient must be host_factor * grad(output).
    """
    if algorithm is AlphaAlgorithm.ADD:
        return host + alpha * (seed_output - host), 1.0 - alpha
    if algorithm is AlphaAlgorithm.MULTIPLY:
        factor = 1.0 + alpha * torch.tanh(seed_output - seed_input)  # (N, C, H, W)
        return host * factor, factor.detach()
    assert gate is not None, "the GATE algorithm needs a blend gate"
    weight = alpha * gate  # (N, 1, 1, 1)
    return host + weight * (seed_output - host), (1.0 - weight).detach()
