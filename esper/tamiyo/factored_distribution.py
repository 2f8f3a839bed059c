"""The factored action distribution: eight categorical heads with masks and causal masks.

op is masked to the ops possible on at least one slot; slot is masked to the slots the chosen
op is possible on; the other heads are free. The log-probability of an action sums the heads
that matter for its op (CAUSAL_HEADS); the others contribute nothing, so they get no gradient.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.distributions import Categorical

from esper.leyline.actions import CAUSAL_HEADS, HEADS, FactoredAction, GerminationStyle, Op
from esper.tamiyo.action_masks import action_mask
from esper.tamiyo.observation import EnvObservation

OP, SLOT = HEADS.index("op"), HEADS.index("slot")
MASKED_LOGIT = -1e9  # a masked choice's logit: probability 0 in float32

# CAUSAL[op, head] = 1.0 when `head` matters for `op`. (ops, heads)
CAUSAL = torch.tensor([[float(head in CAUSAL_HEADS[op]) for head in HEADS] for op in Op])


@dataclass(frozen=True)
class ActionMasks:
    """Which ops are possible (N, ops), and on which slots for each op (N, ops, S)."""

    ops: torch.Tensor
    slots: torch.Tensor

    @classmethod
    def of(cls, observations: list[EnvObservation], min_prune_age: int) -> ActionMasks:
        slots = torch.tensor([action_mask(obs, min_prune_age) for obs in observations])  # (N, ops, S)
        return cls(ops=slots.any(dim=-1), slots=slots)


def _masked(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return logits.masked_fill(~mask, MASKED_LOGIT)


def head_distributions(logits: list[torch.Tensor], masks: ActionMasks,
                       ops: torch.Tensor) -> list[Categorical]:
    """One distribution per head for batch entries whose op is `ops` (B,).

    `logits[h]` is (B, n_h); `masks.ops` (B, ops) and `masks.slots` (B, ops, S).
    """
    slot_mask = masks.slots.gather(1, ops.view(-1, 1, 1).expand(-1, 1, masks.slots.shape[-1]))
    dists = []
    for h, head_logits in enumerate(logits):
        if h == OP:
            head_logits = _masked(head_logits, masks.ops)
        elif h == SLOT:
            head_logits = _masked(head_logits, slot_mask.squeeze(1))
        dists.append(Categorical(logits=head_logits))
    return dists


def sample(logits: list[torch.Tensor], masks: ActionMasks,
           generator: torch.Generator) -> torch.Tensor:
    """Sample actions (B, heads): op first, then every other head given the op."""
    op_probs = torch.softmax(_masked(logits[OP], masks.ops), dim=-1)
    ops = torch.multinomial(op_probs, 1, generator=generator).squeeze(1)  # (B,)
    dists = head_distributions(logits, masks, ops)
    choices = [ops if h == OP else torch.multinomial(d.probs, 1, generator=generator).squeeze(1)
               for h, d in enumerate(dists)]
    return torch.stack(choices, dim=1)  # (B, heads)


def evaluate(logits: list[torch.Tensor], masks: ActionMasks,
             actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-head log-probabilities and entropies (B, heads) of `actions` (B, heads), both
    multiplied by the causal mask of each action's op (irrelevant heads: exactly 0)."""
    ops = actions[:, OP]
    dists = head_distributions(logits, masks, ops)
    causal = CAUSAL.to(actions.device)[ops]  # (B, heads)
    log_probs = torch.stack([d.log_prob(actions[:, h]) for h, d in enumerate(dists)], dim=1)
    entropies = torch.stack([d.entropy() for d in dists], dim=1)
    return log_probs * causal, entropies * causal


def to_action(row: list[int]) -> FactoredAction:
    """A sampled row of head indices as a FactoredAction."""
    op, slot, blueprint, style, tempo, target, speed, curve = row
    return FactoredAction(Op(op), slot, blueprint, GerminationStyle(style), tempo, target, speed, curve)
