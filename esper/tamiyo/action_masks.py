"""Which (op, slot) pairs are physically possible: only impossible actions are masked."""

from __future__ import annotations

from esper.leyline.actions import Op
from esper.leyline.stages import LIVE_STAGES, SeedStage
from esper.tamiyo.observation import EnvObservation, SlotView

_BLOCKS_GERMINATION = (SeedStage.GERMINATED, SeedStage.TRAINING,
                       SeedStage.PRUNED, SeedStage.EMBARGOED, SeedStage.RESETTING)
_ADVANCEABLE = (SeedStage.GERMINATED, SeedStage.TRAINING, SeedStage.BLENDING)


def slot_allows(op: Op, view: SlotView, obs: EnvObservation, min_prune_age: int) -> bool:
    """Whether `op` is possible on the slot `view` of `obs`."""
    if op is Op.WAIT:
        return True
    if op is Op.GERMINATE:
        return (view.empty and obs.seeds_germinated < obs.max_seeds
                and obs.count(*_BLOCKS_GERMINATION) == 0)
    if op is Op.ADVANCE:
        return view.stage in _ADVANCEABLE
    if op is Op.FOSSILIZE:
        return view.stage is SeedStage.HOLDING
    if op is Op.PRUNE:
        return view.stage in LIVE_STAGES and view.seed_age >= min_prune_age
    if op is Op.SET_ALPHA_TARGET:
        return view.stage in (SeedStage.BLENDING, SeedStage.HOLDING) and view.alpha_holding
    raise ValueError(f"unknown op {op!r}")


def action_mask(obs: EnvObservation, min_prune_age: int) -> list[list[bool]]:
    """`mask[op][slot]`: True where the op is possible on that slot (WAIT: every slot)."""
    return [[slot_allows(op, view, obs, min_prune_age) for view in obs.slots] for op in Op]
