"""The `cnn` host network and the MorphogeneticModel that threads it through seed slots."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import torch
from torch import nn
from torch.nn import functional as F

from esper.kasmina.alpha import AlphaSchedule
from esper.kasmina.blueprints import param_count
from esper.kasmina.errors import LifecycleError, SlotConfigError
from esper.kasmina.gradients import measure_gradient_groups
from esper.kasmina.lifecycle import DEFAULT_SCHEDULE
from esper.kasmina.slot import SeedSlot
from esper.kasmina.state import GradientStats, Initiator, SlotUpdate
from esper.leyline.config import GatesConfig, HostConfig, HostPooling, SlotsConfig
from esper.leyline.stages import ACTIVE_STAGES, LIVE_STAGES, AlphaAlgorithm, SeedStage


class ConvBlock(nn.Module):
    """conv kxk (same padding, no bias) -> BatchNorm -> ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2, bias=False)
        self.norm = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(self.conv(x)))


def global_average(x: torch.Tensor) -> torch.Tensor:
    """The mean of x (N, C, H, W) over H and W, (N, C), as sum / (H * W): the value of
    `x.mean(dim=(2, 3))`, but its backward broadcasts the gradient where mean's writes a
    divided full-size copy (a tenth of the stacked anchor's step, benchmarks/throughput.py)."""
    return x.sum(dim=(2, 3)) / (x.shape[2] * x.shape[3])


def conv_multiply_adds(config: HostConfig, in_channels: int, image_size: int) -> int:
    """Multiply-adds of the host's convolutions per image: the host's compute per sample."""
    sizes = block_sizes(image_size, config.n_blocks, config.pooling)
    channels = [in_channels] + [config.base_channels * 2**i for i in range(config.n_blocks)]
    return sum(size * size * c_in * c_out * config.kernel ** 2
               for size, c_in, c_out in zip(sizes, channels, channels[1:]))


def block_sizes(image_size: int, n_blocks: int, pooling: HostPooling) -> list[int]:
    """H = W at which each host block works, then the size the head sees (n_blocks + 1 sizes).

    The one home of the host's pooling rule: with ``every_block`` block i is followed by
    MaxPool(2) while its output is at least 2x2; with ``none`` every block works at the image
    size. Block i's pool, if any, is the step from size i to size i + 1.
    """
    sizes = [image_size]
    for _ in range(n_blocks):
        size = sizes[-1]
        sizes.append(size // 2 if pooling == "every_block" and size >= 2 else size)
    return sizes


class CNNHost(nn.Module):
    """n_blocks ConvBlocks with base_channels * 2**i channels, each followed by MaxPool(2) as
    `block_sizes` says (``host.pooling``), then global average pooling and a linear classifier."""

    def __init__(self, config: HostConfig, in_channels: int, image_size: int, num_classes: int) -> None:
        super().__init__()
        self.channels = [config.base_channels * 2**i for i in range(config.n_blocks)]
        sizes = block_sizes(image_size, config.n_blocks, config.pooling)
        self.spatial_sizes = sizes[:-1]  # H = W of block i's output, before its pool
        self.blocks = nn.ModuleList()
        self.pools = nn.ModuleList()
        previous = in_channels
        for channels, size, after in zip(self.channels, sizes, sizes[1:]):
            self.blocks.append(ConvBlock(previous, channels, config.kernel))
            self.pools.append(nn.MaxPool2d(2) if after < size else nn.Identity())
            previous = channels
        self.head = nn.Linear(previous, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block, pool in zip(self.blocks, self.pools):
            x = pool(block(x))
        return self.head(global_average(x))


def slot_id(block: int) -> str:
    """The id of the slot after host block `block`."""
    return f"r0c{block}"


class MorphogeneticModel(nn.Module):
    """A CNNHost whose activation after block i passes through slot r0c{i} when enabled.

    Model-level lifecycle helpers (`germinate`, `prune_live_seeds`) enforce the per-episode
    seed limit; everything else is on the slots (`model.slots[slot_id]`).
    """

    def __init__(
        self,
        host: HostConfig,
        slots: SlotsConfig,
        gates: GatesConfig,
        *,
        image_shape: tuple[int, int, int],
        num_classes: int,
    ) -> None:
        super().__init__()
        in_channels, height, width = image_shape
        assert height == width, f"square images only, got {height}x{width}"
        self.host = CNNHost(host, in_channels, height, num_classes)
        self.max_seeds = slots.max_seeds
        self.seeds_germinated = 0  # this episode (a model lives for one episode)
        self.slots = nn.ModuleDict()
        for sid in slots.enabled:
            suffix = sid.removeprefix("r0c")
            block = int(suffix) if sid.startswith("r0c") and suffix.isdigit() else host.n_blocks
            if block >= host.n_blocks:
                raise SlotConfigError(
                    f"slot {sid} needs host block {block}, but the host has {host.n_blocks} "
                    f"blocks (slots r0c0..r0c{host.n_blocks - 1})"
                )
            channels, size = self.host.channels[block], self.host.spatial_sizes[block]
            self.slots[sid] = SeedSlot(sid, channels, (channels, size, size), slots, gates,
                                       grad_clip=host.grad_clip)

    def forward(
        self, x: torch.Tensor, alpha_overrides: Mapping[str, torch.Tensor] | None = None
    ) -> torch.Tensor:
        """Logits (N, classes) of images (N, C, H, W).

        :param alpha_overrides: slot id -> per-sample alphas (N,), used by the fused validation.
        """
        for i, (block, pool) in enumerate(zip(self.host.blocks, self.host.pools)):
            x = block(x)  # (N, C_i, H_i, W_i)
            sid = slot_id(i)
            if sid in self.slots:
                alpha = None if alpha_overrides is None else alpha_overrides.get(sid)
                x = self.slots[sid](x, alpha)
            x = pool(x)
        return self.host.head(global_average(x))  # (N, classes)

    # ---------------------------------------------------------------- views

    def seed_slots(self) -> Iterator[SeedSlot]:
        for slot in self.slots.values():
            assert isinstance(slot, SeedSlot)
            yield slot

    def slot(self, sid: str) -> SeedSlot:
        slot = self.slots[sid]
        assert isinstance(slot, SeedSlot)
        return slot

    def host_blocks_cut_off(self) -> list[nn.Module]:
        """The host blocks no training gradient reaches: every block up to the last slot that
        cuts the host path (`SeedSlot.cuts_host_gradient`). Their gradients are exactly 0 by
        construction, which says nothing about their health."""
        cuts = [i for i in range(len(self.host.blocks))
                if slot_id(i) in self.slots and self.slot(slot_id(i)).cuts_host_gradient]
        return list(self.host.blocks[:cuts[-1] + 1]) if cuts else []

    def host_parameters(self) -> list[nn.Parameter]:
        return list(self.host.parameters())

    @property
    def host_param_count(self) -> int:
        return param_count(self.host)

    @property
    def seed_param_count(self) -> int:
        """Parameters of every seed currently held (live and fossilized)."""
        return sum(slot.seed_param_count for slot in self.seed_slots())

    @property
    def fossilized_param_count(self) -> int:
        return sum(s.seed_param_count for s in self.seed_slots() if s.stage is SeedStage.FOSSILIZED)

    # ---------------------------------------------------------------- lifecycle

    def germinate(
        self,
        sid: str,
        blueprint: str,
        *,
        accuracy: float,
        algorithm: AlphaAlgorithm = AlphaAlgorithm.ADD,
        schedule: AlphaSchedule = DEFAULT_SCHEDULE,
        seed_id: str | None = None,
    ) -> SlotUpdate:
        """Germinate `blueprint` in slot `sid` (seed id defaults to ``seed{n}``).

        Raises:
            LifecycleError: the per-episode seed limit is reached, or the slot is not empty.
            BlueprintError: see `SeedSlot.germinate`.
        """
        if self.seeds_germinated >= self.max_seeds:
            raise LifecycleError(f"seed limit reached ({self.max_seeds} per episode)")
        update = self.slot(sid).germinate(
            blueprint,
            seed_id if seed_id is not None else f"seed{self.seeds_germinated}",
            accuracy=accuracy,
            algorithm=algorithm,
            schedule=schedule,
        )
        if update.ok:
            self.seeds_germinated += 1
        return update

    def prune_live_seeds(
        self, initiator: Initiator = "governor", reason: str = "governor rollback"
    ) -> list[SlotUpdate]:
        """Prune every live, non-fossilized seed (used by the governor's rollback)."""
        return [
            slot.prune(initiator, reason)
            for slot in self.seed_slots()
            if slot.stage in LIVE_STAGES
        ]

    def step_epoch(self) -> list[SlotUpdate]:
        """`step_epoch` of every slot, in slot order."""
        return [slot.step_epoch() for slot in self.seed_slots()]

    # ---------------------------------------------------------------- gradients

    def measure_gradients(self) -> dict[str, GradientStats]:
        """After backward, before the optimiser steps: measure every seed in the forward pass.

        One `_foreach_norm` pass over the host's and the seeds' gradients; records each seed's
        gradient norm, health, vanishing/exploding flags and seed/host norm ratio into its
        state, plus any isolation leak flagged by an armed check. Returns slot id -> stats. A
        seed none of whose parameters has a gradient (the parameter-free noop) is not measured:
        its gradient fields stay None, as an empty group's norm 0 and health 1.0 measure nothing.
        """
        slots = [s for s in self.seed_slots() if s.seed is not None and s.stage in ACTIVE_STAGES]
        stats = measure_gradient_groups(
            [self.host_parameters()] + [slot.seed_parameters() for slot in slots]
        )
        host_norm = stats[0].gradient_norm if stats[0].n_tensors > 0 else None
        leaks = {s.slot_id: s.collect_isolation_check() for s in self.seed_slots()}
        flagged = {sid: leak for sid, leak in leaks.items() if leak is not None}
        if flagged:
            values = torch.stack(list(flagged.values())).tolist()
            for sid, leak in zip(flagged, values):
                state = self.slot(sid).state
                if leak and state is not None:
                    state.isolation_violations += 1
        result = {}
        for slot, seed_stats in zip(slots, stats[1:]):
            if seed_stats.n_tensors == 0:
                continue  # no gradient at all (a parameter-free noop seed): nothing measured
            slot.record_gradients(seed_stats, host_norm)
            result[slot.slot_id] = seed_stats
        return result

    def arm_isolation_checks(self) -> None:
        """Check gradient isolation of every isolated seed on the next forward/backward."""
        for slot in self.seed_slots():
            if slot.is_isolated:
                slot.arm_isolation_check()
