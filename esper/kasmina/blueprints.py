"""The CNN seed blueprints of docs/pipeline.md §3 and their registry.

Every blueprint maps [N, C, H, W] -> [N, C, H, W]. Convolutions have no bias (a GroupNorm or the
host's BatchNorm follows). Exact parameter counts (C channels):

| name        | parameters                                                     |
|-------------|----------------------------------------------------------------|
| noop        | 0                                                              |
| norm        | 2C + 1                                                         |
| attention   | 2Cr + r + C with r = max(1, C // 4) (= C^2/2 + 5C/4 when 4 | C) |
| depthwise   | C^2 + 11C                                                      |
| bottleneck  | 2Cb + 9b^2 + 2C with b = max(8, C // 4)                         |
| conv_small  | C^2 + 2C                                                       |
| conv_light  | 9C^2 + 2C                                                      |
| conv_heavy  | 18C^2 + 4C                                                     |
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Mapping

import torch
from torch import nn
from torch.nn import functional as F

from esper.kasmina.errors import BlueprintError


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with gcd(C, 4) groups: per-group statistics even on tiny (1x1) maps."""
    return nn.GroupNorm(math.gcd(channels, 4), channels)


class Noop(nn.Module):
    """Identity: a control blueprint that adds nothing."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class NormSeed(nn.Module):
    """x + tanh(s) * (GroupNorm(x) - x), with the scalar s initialised to 0 (starts as identity)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = group_norm(channels)
        self.scale = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.tanh(self.scale) * (self.norm(x) - x)


class AttentionSeed(nn.Module):
    """Squeeze-excite: channel weights y = sigmoid(W2 ReLU(W1 avgpool(x))); returns x * y."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        reduced = max(1, channels // 4)
        self.squeeze = nn.Linear(channels, reduced)
        self.excite = nn.Linear(reduced, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.mean(dim=(2, 3))  # (N, C)
        y = torch.sigmoid(self.excite(F.relu(self.squeeze(y))))  # (N, C)
        return x * y[:, :, None, None]


class DepthwiseSeed(nn.Module):
    """x + ReLU(GN(pointwise1x1(depthwise3x3(x))))."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False)
        self.pointwise = nn.Conv2d(channels, channels, 1, bias=False)
        self.norm = group_norm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + F.relu(self.norm(self.pointwise(self.depthwise(x))))


class BottleneckSeed(nn.Module):
    """x + GN(up1x1(ReLU(conv3x3(ReLU(down1x1(x)))))), width b = max(8, C // 4), `up` zero-init.

    With `up` at zero the GroupNorm sees a constant map and outputs 0, so the seed starts as the
    identity. GN's input gradient at a constant map is ~1/sqrt(eps) times the upstream one, so
    the first step's `up` gradient is large (the seed's clip at 1.0 bounds the step).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        width = max(8, channels // 4)
        self.down = nn.Conv2d(channels, width, 1, bias=False)
        self.conv = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.up = nn.Conv2d(width, channels, 1, bias=False)
        self.norm = group_norm(channels)
        nn.init.zeros_(self.up.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.down(x))  # (N, b, H, W)
        y = F.relu(self.conv(y))  # (N, b, H, W)
        return x + self.norm(self.up(y))  # (N, C, H, W)


class ConvSmallSeed(nn.Module):
    """x + ReLU(GN(conv1x1(x))).

    docs/pipeline.md asks for a zero-initialised conv, but GN of an all-zero map is exactly 0 and
    ReLU'(0) = 0, so no gradient would ever reach any parameter (a dead seed; a test shows it).
    Instead the conv keeps PyTorch's default init and the GroupNorm weight starts at 1e-3: the
    seed starts within ~1e-3 of the identity and every parameter gets gradient from step one.
    The parameter count is unchanged.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 1, bias=False)
        self.norm = group_norm(channels)
        nn.init.constant_(self.norm.weight, 1e-3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + F.relu(self.norm(self.conv(x)))


class ConvLightSeed(nn.Module):
    """x + ReLU(GN(conv3x3(x)))."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.norm = group_norm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + F.relu(self.norm(self.conv(x)))


class ConvHeavySeed(nn.Module):
    """Two conv3x3 -> GN -> ReLU blocks (not residual: at alpha 1 it replaces the activation)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.norm1 = group_norm(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.norm2 = group_norm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.norm1(self.conv1(x)))
        return F.relu(self.norm2(self.conv2(y)))


BLUEPRINTS: Mapping[str, Callable[[int], nn.Module]] = {
    "noop": lambda channels: Noop(),
    "norm": NormSeed,
    "attention": AttentionSeed,
    "depthwise": DepthwiseSeed,
    "bottleneck": BottleneckSeed,
    "conv_small": ConvSmallSeed,
    "conv_light": ConvLightSeed,
    "conv_heavy": ConvHeavySeed,
}


def build_blueprint(name: str, channels: int) -> nn.Module:
    """Build blueprint `name` for a slot with `channels` channels.

    Raises:
        BlueprintError: `name` is not a registered blueprint.
    """
    if name not in BLUEPRINTS:
        raise BlueprintError(f"unknown blueprint {name!r}; expected one of {sorted(BLUEPRINTS)}")
    return BLUEPRINTS[name](channels)


def param_count(module: nn.Module) -> int:
    """Number of scalar parameters of `module`."""
    return sum(p.numel() for p in module.parameters())
