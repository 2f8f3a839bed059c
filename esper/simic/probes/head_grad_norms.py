"""`head_grad_norms`: the L2 norm of each action head's and of the value head's gradient.

Measured after every backward pass of a PPO update, before gradient clipping, and averaged over
the update's epochs. A head that got no gradient reports None, not 0: the causal masks
(docs/pipeline.md §4) cut every gradient of a head that matters for no sample of the batch
(e.g. `tempo` in a batch of WAITs), and a head whose parameters hold no gradient at all was not
in the graph.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch

from esper.kasmina.state import GradientStats
from esper.leyline.actions import HEADS
from esper.leyline.events import HeadValues, PPOUpdatePayload
from esper.tamiyo.actor_critic import FactoredActorCritic

HEAD_NAMES = (*HEADS, "value")  # the measured heads, in this order


@dataclass(frozen=True)
class HeadGradNorms(HeadValues):
    """Mean gradient norm of each action head, and of the value head, over an update's epochs;
    None: no gradient."""

    value: float | None


class HeadGradNormRecorder:
    """The head gradient norms of one PPO update, one row per backward pass."""

    def __init__(self, network: FactoredActorCritic) -> None:
        #: parameter groups to measure, in HEAD_NAMES order
        self.groups: list[list[torch.nn.Parameter]] = [
            *(list(head.parameters()) for head in network.heads),
            list(network.value_head.parameters())]
        self._rows: list[list[float | None]] = []

    def record(self, stats: Sequence[GradientStats], relevant: Sequence[bool]) -> None:
        """One backward pass: `stats` of `groups`; `relevant[h]`: action head h matters for at
        least one sample of the batch (the value head always does)."""
        self._rows.append([
            group.gradient_norm if group.n_tensors > 0 and needed else None
            for group, needed in zip(stats, (*relevant, True), strict=True)])

    def result(self) -> HeadGradNorms:
        """Mean over the recorded passes of each head's norm (None where it had none)."""
        assert self._rows, "no backward pass was measured"
        means = []
        for column in zip(*self._rows, strict=True):
            measured = [norm for norm in column if norm is not None]
            means.append(sum(measured) / len(measured) if measured else None)
        return HeadGradNorms(*means)


def with_head_grad_norms(metrics: PPOUpdatePayload, norms: HeadGradNorms) -> PPOUpdatePayload:
    """`metrics` with the head_<name>_grad_norm fields measured."""
    return replace(metrics, **{f"head_{name}_grad_norm": getattr(norms, name)
                               for name in HEAD_NAMES})
