"""The alpha controller: ramps a slot's blending weight along a curve, one tick per epoch."""

from __future__ import annotations

import math
from dataclasses import dataclass

from esper.leyline.stages import AlphaCurve, SigmoidSteepness


def curve_value(curve: AlphaCurve, t: float, steepness: float = SigmoidSteepness.STANDARD) -> float:
    """Progress of `curve` at normalised time `t` in [0, 1]; curve(0) = 0 and curve(1) = 1."""
    t = min(max(t, 0.0), 1.0)
    if curve is AlphaCurve.LINEAR:
        return t
    if curve is AlphaCurve.COSINE:
        return 0.5 * (1.0 - math.cos(math.pi * t))
    # SIGMOID: the logistic sigmoid(k (t - 1/2)), rescaled so its endpoints are exactly 0 and 1.
    lo = 1.0 / (1.0 + math.exp(0.5 * steepness))
    hi = 1.0 / (1.0 + math.exp(-0.5 * steepness))
    s = 1.0 / (1.0 + math.exp(-steepness * (t - 0.5)))
    return (s - lo) / (hi - lo)


@dataclass(frozen=True)
class AlphaSchedule:
    """How a slot blends once it leaves TRAINING: algorithm-independent ramp parameters."""

    target: float  # alpha to reach, (0, 1]
    epochs: int  # ramp length in epochs (a `BlendTempo` value); 0 jumps to the target
    curve: AlphaCurve
    steepness: int = SigmoidSteepness.STANDARD  # used by SIGMOID only


class AlphaController:
    """Ramps alpha from `start` to `target` over `epochs` ticks along a curve.

    Each `tick()` advances one epoch; the last tick snaps exactly onto the target, after which
    the controller is *holding* (it stays there until `retarget`).
    """

    def __init__(self, alpha: float = 0.0) -> None:
        self.alpha = alpha  # current value
        self.start = alpha
        self.target = alpha
        self.epochs = 0
        self.curve = AlphaCurve.LINEAR
        self.steepness: int = SigmoidSteepness.STANDARD
        self.ticks = 0  # ticks done in the current ramp

    def retarget(self, schedule: AlphaSchedule) -> None:
        """Start a new ramp from the current alpha; `schedule.epochs == 0` snaps at once."""
        self.start = self.alpha
        self.target = schedule.target
        self.epochs = schedule.epochs
        self.curve = schedule.curve
        self.steepness = schedule.steepness
        self.ticks = 0
        if self.epochs == 0:
            self.alpha = self.target

    def tick(self) -> float:
        """Advance the ramp by one epoch and return the new alpha."""
        if self.is_holding:
            return self.alpha
        self.ticks += 1
        if self.ticks >= self.epochs:
            self.alpha = self.target  # snap: no floating-point residue on the last tick
        else:
            progress = curve_value(self.curve, self.ticks / self.epochs, self.steepness)
            self.alpha = self.start + (self.target - self.start) * progress
        return self.alpha

    @property
    def is_holding(self) -> bool:
        """The ramp is finished and alpha sits exactly on its target."""
        return self.ticks >= self.epochs and self.alpha == self.target

    @property
    def progress(self) -> float:
        """Fraction of the current ramp done, [0, 1] (1 when holding)."""
        return 1.0 if self.epochs == 0 else min(self.ticks / self.epochs, 1.0)
