"""The factored action of the policy (docs/pipeline.md §4): one choice per head."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from esper.leyline.stages import AlphaCurve, SigmoidSteepness


class Op(IntEnum):
    """What to do this epoch."""

    WAIT = 0
    GERMINATE = 1
    SET_ALPHA_TARGET = 2
    PRUNE = 3
    FOSSILIZE = 4
    ADVANCE = 5


class GerminationStyle(IntEnum):
    """How a new seed blends in: the alpha curve and the blend algorithm together."""

    LINEAR_ADD = 0
    LINEAR_MULTIPLY = 1
    SIGMOID_ADD = 2
    GATED_GATE = 3


TEMPO_EPOCHS = (3, 5, 8)  # FAST, STANDARD, SLOW
ALPHA_TARGETS = (0.5, 0.7, 1.0)
ALPHA_SPEED_EPOCHS = (0, 3, 5, 8)
ALPHA_CURVES: tuple[tuple[AlphaCurve, SigmoidSteepness], ...] = (
    (AlphaCurve.LINEAR, SigmoidSteepness.STANDARD),  # steepness unused
    (AlphaCurve.COSINE, SigmoidSteepness.STANDARD),  # steepness unused
    (AlphaCurve.SIGMOID, SigmoidSteepness.GENTLE),
    (AlphaCurve.SIGMOID, SigmoidSteepness.STANDARD),
    (AlphaCurve.SIGMOID, SigmoidSteepness.SHARP),
)

#: The action heads, in the order of the network's outputs: the one list. Everything per head
#: derives from it (the catalogue, the network's head sizes, the PPO losses); the dataclasses with
#: a field per head (FactoredAction, events.HeadValues, PPOUpdatePayload's head_*_grad_norm) name
#: them for readers and type checkers, and tests/leyline/test_actions.py keeps them in step.
HEADS = ("op", "slot", "blueprint", "style", "tempo", "alpha_target", "alpha_speed", "alpha_curve")

# Options of each head fixed by the action vocabulary; the slot and blueprint heads have one per
# enabled slot and per blueprint of the experiment.
_FIXED_OPTIONS = {"op": len(Op), "style": len(GerminationStyle), "tempo": len(TEMPO_EPOCHS),
                  "alpha_target": len(ALPHA_TARGETS), "alpha_speed": len(ALPHA_SPEED_EPOCHS),
                  "alpha_curve": len(ALPHA_CURVES)}


def head_sizes(n_slots: int, n_blueprints: int) -> tuple[int, ...]:
    """The number of options of each head, in HEADS order, for an experiment with `n_slots`
    enabled slots and `n_blueprints` blueprints."""
    sizes = {**_FIXED_OPTIONS, "slot": n_slots, "blueprint": n_blueprints}
    return tuple(sizes[name] for name in HEADS)

# Heads whose choice matters for each op; the others get no gradient (causal masks).
CAUSAL_HEADS: dict[Op, frozenset[str]] = {
    Op.WAIT: frozenset({"op"}),
    Op.GERMINATE: frozenset({"op", "slot", "blueprint", "style", "tempo", "alpha_target"}),
    Op.SET_ALPHA_TARGET: frozenset(
        {"op", "slot", "style", "alpha_target", "alpha_speed", "alpha_curve"}),
    Op.PRUNE: frozenset({"op", "slot", "alpha_speed", "alpha_curve"}),
    Op.FOSSILIZE: frozenset({"op", "slot"}),
    Op.ADVANCE: frozenset({"op", "slot"}),
}


@dataclass(frozen=True)
class FactoredAction:
    """One choice per head, as indices into the head's options."""

    op: Op
    slot: int = 0  # index into the experiment's enabled slots
    blueprint: int = 0  # index into the experiment's blueprints
    style: GerminationStyle = GerminationStyle.LINEAR_ADD
    tempo: int = 1  # index into TEMPO_EPOCHS
    alpha_target: int = 2  # index into ALPHA_TARGETS
    alpha_speed: int = 0  # index into ALPHA_SPEED_EPOCHS
    alpha_curve: int = 0  # index into ALPHA_CURVES


WAIT = FactoredAction(Op.WAIT)
