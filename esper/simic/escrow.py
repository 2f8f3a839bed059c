"""The credit escrow of reward mode `escrow`: a seed's credit is paid while it lives and is
settled when it leaves the live stages, kept for a fossil and taken back otherwise.

Each step pays every live seed the change of its credit target (its bounded counterfactual
credit, `rewards.escrow_targets`), so what a seed has been paid so far always equals its last
target. When the seed is fossilised that balance is kept; when it is pruned, or is still live at
the episode's end, the balance is taken back. Over an episode the escrowed credit therefore sums
to the credit of the fossilised seeds at their fossilisation: a seed kept live (or cycled between
BLENDING and HOLDING) to collect credit nets nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping


class CreditEscrow:
    """One env's escrow over an episode: seed id -> credit paid and not yet settled."""

    def __init__(self) -> None:
        self.balances: dict[str, float] = {}

    def settle(self, targets: Mapping[str, float], live: Collection[str],
               kept: Collection[str]) -> float:
        """The escrow's reward for one step.

        :param targets: seed id -> credit target of each live seed measured this step.
        :param live: ids of the seeds still live after the step (empty at the episode's end,
            so every live balance is taken back).
        :param kept: ids of the fossilised seeds: their balance is kept.
        """
        paid = 0.0
        for seed_id, target in targets.items():
            paid += target - self.balances.get(seed_id, 0.0)
            self.balances[seed_id] = target
        for seed_id in [s for s in self.balances if s not in live]:
            balance = self.balances.pop(seed_id)
            if seed_id not in kept:
                paid -= balance  # pruned, or live at the end: take its credit back
        return paid
