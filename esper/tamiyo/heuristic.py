"""The heuristic policy of docs/pipeline.md §5: no learning, fixed rules.

It germinates when the host has stabilised and plateaued, and at the latest at its
*germination deadline*: the last epoch from which a seed at STANDARD tempo can still pass
its gates and be fossilised before the episode ends (a host trained from scratch improves
for the whole of a short episode, so it may never plateau).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from esper.leyline.actions import TEMPO_EPOCHS, WAIT, FactoredAction, GerminationStyle, Op
from esper.leyline.config import GatesConfig, HeuristicConfig
from esper.leyline.stages import SeedStage
from esper.tamiyo.action_masks import slot_allows
from esper.tamiyo.policy import FixedPolicy
from esper.tamiyo.observation import EnvObservation, SlotView

PRUNE_PENALTY = 2.0  # added to a blueprint's penalty per prune; halved every epoch
FAST_TEMPO = 0  # index of the 3-epoch tempo
STANDARD_TEMPO = 1  # index of the 5-epoch tempo
FULL_ALPHA = 2  # index of alpha target 1.0


@dataclass
class _EnvMemory:
    next_blueprint: int = 0
    last_prune_epoch: int | None = None
    penalties: dict[int, float] = field(default_factory=dict)  # blueprint index -> penalty


def epochs_to_fossilise(gates: GatesConfig, tempo: int) -> int:
    """Epochs from a germination to the earliest FOSSILIZE when the policy advances at every
    chance: one to enter TRAINING, G2's epochs in TRAINING, the blend (G3: alpha at target
    after `tempo`'s epochs; strict mode also its minimum epochs in BLENDING), and one in
    HOLDING, where the contribution is measured."""
    blend = TEMPO_EPOCHS[tempo]
    if gates.mode == "strict":
        blend = max(blend, gates.G3.min_blending_epochs)
    return 1 + gates.G2.min_training_epochs + blend + 1


class HeuristicPolicy(FixedPolicy):
    """Germinate on a plateau of a stabilised host or at the germination deadline,
    round-robin over the blueprints; advance seeds through their gates, prune failing ones,
    fossilise contributing ones.

    :param gates: the experiment's gates, which set how long a seed needs to be fossilised.
    """

    def __init__(self, config: HeuristicConfig, n_blueprints: int, min_prune_age: int,
                 gates: GatesConfig) -> None:
        self.config = config
        self.n_blueprints = n_blueprints
        self.min_prune_age = min_prune_age
        self.gates = gates
        self.memory: list[_EnvMemory] = []

    def germination_deadline(self, episode_length: int, tempo: int = STANDARD_TEMPO) -> int:
        """The last epoch from which a seed at `tempo` can be fossilised by the episode's last
        epoch (negative when none can)."""
        return episode_length - 1 - epochs_to_fossilise(self.gates, tempo)

    def start_episode(self, n_envs: int) -> None:
        self.memory = [_EnvMemory() for _ in range(n_envs)]

    def act(self, observations: list[EnvObservation]) -> list[FactoredAction]:
        return [self._act_one(obs, memory) for obs, memory in zip(observations, self.memory)]

    def _act_one(self, obs: EnvObservation, memory: _EnvMemory) -> FactoredAction:
        memory.penalties = {bp: p / 2 for bp, p in memory.penalties.items()}
        for index, view in enumerate(obs.slots):
            action = self._manage(index, view, obs)
            if action is not None:
                if action.op is Op.PRUNE:
                    self._record_prune(obs, memory, view)
                return action
        return self._maybe_germinate(obs, memory)

    def _manage(self, index: int, view: SlotView, obs: EnvObservation) -> FactoredAction | None:
        cfg = self.config
        if view.stage is SeedStage.GERMINATED:
            return FactoredAction(Op.ADVANCE, slot=index)
        if view.stage in (SeedStage.TRAINING, SeedStage.BLENDING):
            failing = (view.epochs_in_stage >= cfg.prune_min_epochs
                       and view.improvement_since_stage_start < cfg.prune_below_improvement)
            if failing and slot_allows(Op.PRUNE, view, obs, self.min_prune_age):
                return FactoredAction(Op.PRUNE, slot=index)
            return FactoredAction(Op.ADVANCE, slot=index)  # the gate decides
        if view.stage is SeedStage.HOLDING and view.contribution is not None:
            if view.contribution > cfg.fossilize_min_contribution:
                return FactoredAction(Op.FOSSILIZE, slot=index)
            if slot_allows(Op.PRUNE, view, obs, self.min_prune_age):
                return FactoredAction(Op.PRUNE, slot=index)
        return None

    def _record_prune(self, obs: EnvObservation, memory: _EnvMemory, view: SlotView) -> None:
        memory.last_prune_epoch = obs.epoch
        blueprint = view.blueprint_index
        if blueprint is not None:
            memory.penalties[blueprint] = memory.penalties.get(blueprint, 0.0) + PRUNE_PENALTY

    def _maybe_germinate(self, obs: EnvObservation, memory: _EnvMemory) -> FactoredAction:
        cfg = self.config
        recently_pruned = (memory.last_prune_epoch is not None
                           and obs.epoch - memory.last_prune_epoch < cfg.prune_cooldown_epochs)
        if obs.epoch < cfg.min_epoch or recently_pruned or not self._time_to_grow(obs):
            return WAIT
        free = [i for i, view in enumerate(obs.slots)
                if slot_allows(Op.GERMINATE, view, obs, self.min_prune_age)]
        if not free:
            return WAIT  # the round-robin moves on only when a blueprint is germinated
        blueprint = self._next_blueprint(memory)
        if blueprint is None:
            return WAIT
        return FactoredAction(Op.GERMINATE, slot=free[0], blueprint=blueprint,
                              style=GerminationStyle.LINEAR_ADD, tempo=self._tempo(obs),
                              alpha_target=FULL_ALPHA)

    def _time_to_grow(self, obs: EnvObservation) -> bool:
        """The host has stabilised and plateaued, or the germination deadline is reached
        while a seed at FAST tempo can still be fossilised."""
        plateau = obs.host_stabilised and obs.plateau_epochs >= self.config.plateau_epochs
        deadline = obs.epoch >= self.germination_deadline(obs.episode_length)
        return plateau or (deadline and self._fits(obs, FAST_TEMPO))

    def _tempo(self, obs: EnvObservation) -> int:
        """STANDARD while a STANDARD seed can still be fossilised this episode, else FAST."""
        return STANDARD_TEMPO if self._fits(obs, STANDARD_TEMPO) else FAST_TEMPO

    def _fits(self, obs: EnvObservation, tempo: int) -> bool:
        """A seed germinated now at `tempo` can be fossilised by the last epoch."""
        return obs.epoch <= self.germination_deadline(obs.episode_length, tempo)

    def _next_blueprint(self, memory: _EnvMemory) -> int | None:
        for offset in range(self.n_blueprints):
            candidate = (memory.next_blueprint + offset) % self.n_blueprints
            if memory.penalties.get(candidate, 0.0) < self.config.blueprint_penalty_limit:
                memory.next_blueprint = candidate + 1
                return candidate
        return None
