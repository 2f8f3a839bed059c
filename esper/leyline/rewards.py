"""The terms of one step's reward, recorded with every step so a run can be audited."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RewardComponents:
    """One step's reward, term by term (docs/pipeline.md §6); `total` is their sum."""

    attribution: float = 0.0  # bounded credit for the seeds' counterfactual contributions
    escrow: float = 0.0  # escrowed credit paid (+) or taken back (-) this step (mode escrow)
    stage_shaping: float = 0.0  # potential-based lifecycle shaping
    param_rent: float = 0.0  # cost of the seed parameters in the model
    action_cost: float = 0.0  # cost of the chosen op
    fossilize: float = 0.0  # bonus or penalty of a FOSSILIZE choice
    holding: float = 0.0  # charge for seeds left undecided in HOLDING (mode escrow)
    terminal: float = 0.0  # end-of-episode accuracy bonus
    governor: float = 0.0  # penalty of the step a governor rollback happened on

    @property
    def total(self) -> float:
        return (self.attribution + self.escrow + self.stage_shaping + self.param_rent
                + self.action_cost + self.fossilize + self.holding + self.terminal + self.governor)
