"""Carry out a policy's factored action on an env's model; impossible choices become WAIT."""

from __future__ import annotations

from dataclasses import dataclass

from esper.kasmina.alpha import AlphaSchedule
from esper.kasmina.state import SlotUpdate
from esper.leyline.actions import (ALPHA_CURVES, ALPHA_SPEED_EPOCHS, ALPHA_TARGETS, TEMPO_EPOCHS,
                                   FactoredAction, GerminationStyle, Op)
from esper.leyline.stages import AlphaAlgorithm, AlphaCurve
from esper.simic.env_state import EnvState
from esper.tamiyo.action_masks import slot_allows
from esper.tamiyo.observation import EnvObservation

_STYLES: dict[GerminationStyle, tuple[AlphaAlgorithm, AlphaCurve]] = {
    GerminationStyle.LINEAR_ADD: (AlphaAlgorithm.ADD, AlphaCurve.LINEAR),
    GerminationStyle.LINEAR_MULTIPLY: (AlphaAlgorithm.MULTIPLY, AlphaCurve.LINEAR),
    GerminationStyle.SIGMOID_ADD: (AlphaAlgorithm.ADD, AlphaCurve.SIGMOID),
    GerminationStyle.GATED_GATE: (AlphaAlgorithm.GATE, AlphaCurve.LINEAR),
}


@dataclass(frozen=True)
class ActionOutcome:
    """What happened to a chosen action."""

    executed: Op  # WAIT when the choice was impossible
    slot_id: str | None  # the slot acted on, None for WAIT
    success: bool  # the requested change happened (a failed gate is not a success)
    update: SlotUpdate | None  # the slot's records, for lifecycle events


def execute(action: FactoredAction, env: EnvState, obs: EnvObservation,
            min_prune_age: int) -> ActionOutcome:
    """Execute `action` on `env`; an impossible one is executed as WAIT and is no success."""
    if action.op is Op.WAIT:
        return ActionOutcome(Op.WAIT, None, True, None)
    view = obs.slots[action.slot]
    if not slot_allows(action.op, view, obs, min_prune_age):
        return ActionOutcome(Op.WAIT, None, False, None)
    slot = env.model.slot(view.slot_id)
    if action.op is Op.GERMINATE:
        algorithm, curve = _STYLES[action.style]
        schedule = AlphaSchedule(ALPHA_TARGETS[action.alpha_target], TEMPO_EPOCHS[action.tempo], curve)
        update = env.model.germinate(view.slot_id, env.blueprints[action.blueprint],
                                     accuracy=obs.val_accuracy, algorithm=algorithm,
                                     schedule=schedule)
    elif action.op is Op.ADVANCE:
        update = slot.advance()
    elif action.op is Op.FOSSILIZE:
        update = slot.fossilize()
    elif action.op is Op.PRUNE:
        update = slot.prune("policy", "policy decision")
    else:  # SET_ALPHA_TARGET
        update = slot.set_alpha_target(_retarget_schedule(action))
    return ActionOutcome(action.op, view.slot_id, update.ok, update)


def _retarget_schedule(action: FactoredAction) -> AlphaSchedule:
    curve, steepness = ALPHA_CURVES[action.alpha_curve]
    return AlphaSchedule(ALPHA_TARGETS[action.alpha_target],
                         ALPHA_SPEED_EPOCHS[action.alpha_speed], curve, steepness)
