"""The heuristic policy of PIPELINE.md section 5: no learning, fixed rules."""

from __future__ import annotations

from dataclasses import dataclass, field

from esper.leyline.actions import WAIT, FactoredAction, GerminationStyle, Op
from esper.leyline.config import HeuristicConfig
from esper.leyline.stages import SeedStage
from esper.tamiyo.action_masks import slot_allows
from esper.tamiyo.policy import FixedPolicy
from esper.tamiyo.observation import EnvObservation, SlotView

PRUNE_PENALTY = 2.0  # added to a blueprint's penalty per prune; halved every epoch
STANDARD_TEMPO = 1  # index of the 5-epoch tempo
FULL_ALPHA = 2  # index of alpha target 1.0


@dataclass
class _EnvMemory:
    next_blueprint: int = 0
    last_prune_epoch: int | None = None
    penalties: dict[int, float] = field(default_factory=dict)  # blueprint index -> penalty


class HeuristicPolicy(FixedPolicy):
    """Germinate on a plateau of a stabilised host, round-robin over the blueprints;
    advance seeds through their gates, prune failing ones, fossilise contributing ones."""

    def __init__(self, config: HeuristicConfig, n_blueprints: int, min_prune_age: int) -> None:
        self.config = config
        self.n_blueprints = n_blueprints
        self.min_prune_age = min_prune_age
        self.memory: list[_EnvMemory] = []

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
        if (not obs.host_stabilised or obs.epoch < cfg.min_epoch or recently_pruned
                or obs.plateau_epochs < cfg.plateau_epochs):
            return WAIT
        free = [i for i, view in enumerate(obs.slots)
                if slot_allows(Op.GERMINATE, view, obs, self.min_prune_age)]
        if not free:
            return WAIT  # the round-robin moves on only when a blueprint is germinated
        blueprint = self._next_blueprint(memory)
        if blueprint is None:
            return WAIT
        return FactoredAction(Op.GERMINATE, slot=free[0], blueprint=blueprint,
                              style=GerminationStyle.LINEAR_ADD, tempo=STANDARD_TEMPO,
                              alpha_target=FULL_ALPHA)

    def _next_blueprint(self, memory: _EnvMemory) -> int | None:
        for offset in range(self.n_blueprints):
            candidate = (memory.next_blueprint + offset) % self.n_blueprints
            if memory.penalties.get(candidate, 0.0) < self.config.blueprint_penalty_limit:
                memory.next_blueprint = candidate + 1
                return candidate
        return None
