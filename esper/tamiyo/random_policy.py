"""The random policy: uniform over the possible actions, a sanity baseline."""

from __future__ import annotations

import random

from esper.leyline.actions import (ALPHA_CURVES, ALPHA_SPEED_EPOCHS, ALPHA_TARGETS, TEMPO_EPOCHS,
                                   FactoredAction, GerminationStyle, Op)
from esper.tamiyo.action_masks import action_mask
from esper.tamiyo.policy import FixedPolicy
from esper.tamiyo.observation import EnvObservation


class RandomPolicy(FixedPolicy):
    """Picks a possible op uniformly, then a slot it is possible on, every other head uniformly."""

    def __init__(self, n_blueprints: int, min_prune_age: int, seed: int) -> None:
        self.n_blueprints = n_blueprints
        self.min_prune_age = min_prune_age
        self.rng = random.Random(seed)

    def start_episode(self, n_envs: int) -> None:
        """The random policy keeps no per-episode state."""

    def act(self, observations: list[EnvObservation]) -> list[FactoredAction]:
        return [self._act_one(obs) for obs in observations]

    def _act_one(self, obs: EnvObservation) -> FactoredAction:
        mask = action_mask(obs, self.min_prune_age)
        op = self.rng.choice([op for op in Op if any(mask[op])])
        slot = self.rng.choice([slot for slot, ok in enumerate(mask[op]) if ok])
        return FactoredAction(
            op=op, slot=slot,
            blueprint=self.rng.randrange(self.n_blueprints),
            style=self.rng.choice(list(GerminationStyle)),
            tempo=self.rng.randrange(len(TEMPO_EPOCHS)),
            alpha_target=self.rng.randrange(len(ALPHA_TARGETS)),
            alpha_speed=self.rng.randrange(len(ALPHA_SPEED_EPOCHS)),
            alpha_curve=self.rng.randrange(len(ALPHA_CURVES)),
        )
