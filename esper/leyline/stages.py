"""Seed lifecycle contracts: stages, transitions, gates, and the alpha-blending vocabulary.

The integer values of `SeedStage` are part of the contract (docs/pipeline.md §2): they are
stored in the registry and fed to policies as one-hot indices, so they never change.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, IntEnum


class SeedStage(IntEnum):
    """Where a seed is in its life. Value 5 is unused (it was a stage of the reference)."""

    UNKNOWN = 0
    DORMANT = 1  # empty slot, ready to germinate
    GERMINATED = 2  # blueprint built, not yet in the forward pass
    TRAINING = 3  # trains in isolation; forward equals the host (straight-through)
    BLENDING = 4  # alpha ramps from 0 to its target
    HOLDING = 6  # alpha at target; waiting for the fossilise decision
    FOSSILIZED = 7  # permanent part of the model (terminal)
    PRUNED = 8  # removed; the slot starts its cooldown
    EMBARGOED = 9  # cooldown: the slot cannot germinate yet
    RESETTING = 10  # last cooldown stage before the slot is empty again


VALID_TRANSITIONS: dict[SeedStage, frozenset[SeedStage]] = {
    SeedStage.UNKNOWN: frozenset(),
    SeedStage.DORMANT: frozenset({SeedStage.GERMINATED}),
    SeedStage.GERMINATED: frozenset({SeedStage.TRAINING, SeedStage.PRUNED}),
    SeedStage.TRAINING: frozenset({SeedStage.BLENDING, SeedStage.PRUNED}),
    SeedStage.BLENDING: frozenset({SeedStage.HOLDING, SeedStage.PRUNED}),
    SeedStage.HOLDING: frozenset({SeedStage.FOSSILIZED, SeedStage.BLENDING, SeedStage.PRUNED}),
    SeedStage.FOSSILIZED: frozenset(),
    SeedStage.PRUNED: frozenset({SeedStage.EMBARGOED}),
    SeedStage.EMBARGOED: frozenset({SeedStage.RESETTING}),
    SeedStage.RESETTING: frozenset({SeedStage.DORMANT}),
}

# The seed runs in the forward pass in these stages.
ACTIVE_STAGES: frozenset[SeedStage] = frozenset(
    {SeedStage.TRAINING, SeedStage.BLENDING, SeedStage.HOLDING, SeedStage.FOSSILIZED}
)
# A live seed: germinated, neither fossilized nor pruned (the stages a seed can be pruned from).
LIVE_STAGES: frozenset[SeedStage] = frozenset(
    {SeedStage.GERMINATED, SeedStage.TRAINING, SeedStage.BLENDING, SeedStage.HOLDING}
)
# The seed was pruned and the slot is cooling down.
FAILURE_STAGES: frozenset[SeedStage] = frozenset(
    {SeedStage.PRUNED, SeedStage.EMBARGOED, SeedStage.RESETTING}
)


def is_valid_transition(from_stage: SeedStage, to_stage: SeedStage) -> bool:
    """Whether the lifecycle allows moving from `from_stage` to `to_stage`."""
    return to_stage in VALID_TRANSITIONS[from_stage]


class GateLevel(IntEnum):
    """Lifecycle gates; each guards the advance into one stage. G4 does not exist."""

    G0 = 0  # -> GERMINATED
    G1 = 1  # -> TRAINING
    G2 = 2  # -> BLENDING
    G3 = 3  # -> HOLDING
    G5 = 5  # -> FOSSILIZED


GATE_TARGETS: dict[GateLevel, SeedStage] = {
    GateLevel.G0: SeedStage.GERMINATED,
    GateLevel.G1: SeedStage.TRAINING,
    GateLevel.G2: SeedStage.BLENDING,
    GateLevel.G3: SeedStage.HOLDING,
    GateLevel.G5: SeedStage.FOSSILIZED,
}


@dataclass(frozen=True)
class GateResult:
    """The outcome of one gate check. Check names are stable snake_case identifiers."""

    gate: GateLevel
    passed: bool
    score: float  # fraction of checks passed, [0, 1]
    checks_passed: tuple[str, ...]
    checks_failed: tuple[str, ...]  # e.g. "gradient_health_not_measured"
    message: str

    @property
    def target_stage(self) -> SeedStage:
        """The stage this gate guards."""
        return GATE_TARGETS[self.gate]


class AlphaAlgorithm(Enum):
    """How the seed output s is blended into the host activation h (x = the seed's input)."""

    ADD = "add"  # h + a * (s - h)
    MULTIPLY = "multiply"  # h * (1 + a * tanh(s - x))
    GATE = "gate"  # h + a * g(x) * (s - h), g a small learned per-sample gate


class AlphaCurve(Enum):
    """Shape of the alpha ramp over normalised time t in [0, 1]."""

    LINEAR = "linear"  # t
    COSINE = "cosine"  # 0.5 * (1 - cos(pi t))
    SIGMOID = "sigmoid"  # logistic with a `SigmoidSteepness`, rescaled to curve(0)=0, curve(1)=1


class SigmoidSteepness(IntEnum):
    """Steepness k of the SIGMOID curve, sigmoid(k (t - 0.5))."""

    GENTLE = 6
    STANDARD = 12
    SHARP = 24


class BlendTempo(IntEnum):
    """Epochs the alpha ramp takes from 0 to its target when blending starts."""

    FAST = 3
    STANDARD = 5
    SLOW = 8
