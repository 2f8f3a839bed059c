"""The forward pass of several envs' models as one computation (`training.batch_envs`).

Env e's host activation is channel block e of one stacked tensor (B, N*C, H, W). Every host
layer acts on each channel by itself or on its own group, so the envs stay apart exactly:
a grouped convolution (groups = N; the first block has groups 1 when every env reads the same
images), BatchNorm (per channel), ReLU, MaxPool (per channel), the global mean, and the
heads as one batched matrix product. The stacked weights are concatenations of each env's own
parameters, made anew each forward, so backward puts every env's gradient on its own
parameters and everything per env (optimisers, clipping, governor snapshots, gradient
probes) works on the env's model as before. Each slot runs on its env's channel block. Results
equal the envs' own forwards up to float rounding (tests/tolaria/test_stacked_step.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from esper.kasmina.host import ConvBlock, MorphogeneticModel, global_average, slot_id
from esper.leyline.stages import ACTIVE_STAGES

AlphaOverrides = Mapping[str, torch.Tensor]  # slot id -> per-sample alphas (N,)


class StackedModels(nn.Module):
    """N `MorphogeneticModel`s of one spec, run as one forward.

    :param models: the envs' models, in env order; they must share one host architecture.
    """

    def __init__(self, models: Sequence[MorphogeneticModel]) -> None:
        super().__init__()
        assert len(models) >= 1
        self.models = nn.ModuleList(models)

    @property
    def envs(self) -> int:
        return len(self.models)

    def members(self) -> list[MorphogeneticModel]:
        """The stacked models, in env order."""
        models = list(self.models)
        assert all(isinstance(model, MorphogeneticModel) for model in models)
        return models  # type: ignore[return-value]

    def forward(self, x: torch.Tensor, per_env_input: bool,
                alpha_overrides: Sequence[AlphaOverrides | None] | None = None) -> torch.Tensor:
        """Logits (B, N, classes).

        :param x: (B, C, H, W) images every env reads, or with `per_env_input` (B, N*C, H, W),
            env e's images in channel block e.
        :param alpha_overrides: per env, slot id -> per-sample alphas (B,) (fused validation).
        """
        models = self.members()
        first = models[0].host
        for i, pool in enumerate(first.pools):
            blocks = [model.host.blocks[i] for model in models]
            shared = i == 0 and not per_env_input
            x = stacked_conv_block(blocks, x, groups=1 if shared else self.envs)
            x = self._slots(models, slot_id(i), x, alpha_overrides)
            x = pool(x)
        features = global_average(x).view(x.shape[0], self.envs, -1)  # (B, N, C)
        weight = torch.stack([model.host.head.weight for model in models])  # (N, classes, C)
        bias = torch.stack([model.host.head.bias for model in models])  # (N, classes)
        return torch.einsum("bnc,nkc->bnk", features, weight) + bias

    def _slots(self, models: list[MorphogeneticModel], sid: str, x: torch.Tensor,
               alpha_overrides: Sequence[AlphaOverrides | None] | None) -> torch.Tensor:
        """Pass each env's channel block through its slot `sid`; the identity when no env's
        slot holds an active seed."""
        if sid not in models[0].slots or not any(
                slot.seed is not None and slot.stage in ACTIVE_STAGES
                for slot in (model.slot(sid) for model in models)):
            return x
        blocks = x.chunk(self.envs, dim=1)  # N x (B, C, H, W)
        return torch.cat([
            model.slot(sid)(block, None if alpha_overrides is None or alpha_overrides[e] is None
                            else alpha_overrides[e].get(sid))
            for e, (model, block) in enumerate(zip(models, blocks))], dim=1)


def stacked_conv_block(blocks: Sequence[nn.Module], x: torch.Tensor, groups: int) -> torch.Tensor:
    """`ConvBlock`s of N envs on the stacked activation x: conv (groups), BatchNorm, ReLU."""
    convs = [block.conv for block in blocks if isinstance(block, ConvBlock)]
    assert len(convs) == len(blocks)
    first = convs[0]
    weight = torch.cat([conv.weight for conv in convs])  # (N*C_out, C_in, k, k)
    x = F.conv2d(x, weight, padding=first.padding, groups=groups)
    return F.relu(stacked_batch_norm([block.norm for block in blocks], x))


def stacked_batch_norm(norms: Sequence[nn.Module], x: torch.Tensor) -> torch.Tensor:
    """N envs' BatchNorm2d on x (B, N*C, H, W): per channel, as each env's own would be. In
    training mode each env's running statistics and batch count are updated as by its own."""
    layers = [norm for norm in norms if isinstance(norm, nn.BatchNorm2d)]
    assert len(layers) == len(norms)
    first = layers[0]
    assert first.momentum is not None and first.track_running_stats and first.affine
    means = torch.cat([layer.running_mean for layer in layers])  # type: ignore[misc]
    variances = torch.cat([layer.running_var for layer in layers])  # type: ignore[misc]
    out = F.batch_norm(x, means, variances,
                       torch.cat([layer.weight for layer in layers]),
                       torch.cat([layer.bias for layer in layers]),
                       first.training, first.momentum, first.eps)
    if first.training:
        with torch.no_grad():
            for layer, mean, variance in zip(layers, means.chunk(len(layers)),
                                             variances.chunk(len(layers))):
                layer.running_mean.copy_(mean)  # type: ignore[union-attr]
                layer.running_var.copy_(variance)  # type: ignore[union-attr]
                layer.num_batches_tracked.add_(1)  # type: ignore[union-attr]
    return out
