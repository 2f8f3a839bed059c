"""Rewards `escrow`, `shaped`, `simplified` and `sparse` (docs/pipeline.md §6), with components.

Accuracies are percentage points. Every step records its components so a run can be audited.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from esper.leyline.actions import Op
from esper.leyline.config import PPOConfig, RewardConfig, RewardWeights
from esper.leyline.rewards import RewardComponents
from esper.leyline.stages import SeedStage

STAGE_POTENTIAL = {
    SeedStage.GERMINATED: 1.0,
    SeedStage.TRAINING: 2.0,
    SeedStage.BLENDING: 3.5,
    SeedStage.HOLDING: 5.5,
    SeedStage.FOSSILIZED: 6.0,
}
MAX_STAGE_AGE_BONUS = 2.0  # potential bonus for time in a stage, 0.3 per epoch up to this
TOGETHER_HURT_DISCOUNT = 0.5  # shaped: positive credit is halved while the seeds together hurt


def slot_potential(stage: SeedStage | None, epochs_in_stage: int) -> float:
    """Shaping potential of one slot: its stage's potential plus time spent there."""
    if stage not in STAGE_POTENTIAL:
        return 0.0
    return STAGE_POTENTIAL[stage] + min(0.3 * epochs_in_stage, MAX_STAGE_AGE_BONUS)


@dataclass(frozen=True)
class SeedCredit:
    """A seed whose counterfactual contribution was measured this epoch."""

    seed_id: str
    contribution: float  # accuracy with the seed minus without it
    progress: float  # accuracy now minus accuracy at germination


@dataclass(frozen=True)
class RewardInputs:
    """One env's step: the state before the action, the executed op, the potentials."""

    op: Op  # the op the policy chose (an impossible choice is still charged for)
    target_stage: SeedStage | None  # stage of the acted-on slot before the action
    target_contribution: float | None
    potential_before: float  # summed slot potentials before the action
    potential_after: float  # summed slot potentials after the action and the epoch step
    fossil_potential_after: float  # the fossilised slots' part of potential_after
    holding_undecided: int  # seeds in HOLDING that the action neither fossilises nor prunes
    escrow: float  # what the credit escrow paid (+) or took back (-) this step
    credits: tuple[SeedCredit, ...]
    total_improvement: float | None  # accuracy with all seeds minus with all seeds off
    committed_accuracy: float  # fossilised seeds on, live seeds off, percent
    reference_accuracy: float | None  # the reference host's (mode escrow), percent
    params_added: int  # seed parameters in the model
    host_params: int
    val_accuracy: float
    last_epoch: bool
    contributing_fossils: int  # fossilized seeds with contribution >= 1
    fossil_params: int
    rolled_back: bool  # the governor rolled the env back on this step's epoch

    @property
    def real_gain(self) -> float | None:
        """Accuracy of the model over the reference host's (None without one)."""
        return real_gain(self.val_accuracy, self.reference_accuracy)


def real_gain(val_accuracy: float, reference_accuracy: float | None) -> float | None:
    """The real gain of a model: its val accuracy over the reference host's, which trained alone
    on the same batches (None without a reference host); what the policy observes and what
    bounds the escrow's credit."""
    return None if reference_accuracy is None else val_accuracy - reference_accuracy


def compute_reward(config: RewardConfig, ppo: PPOConfig, inputs: RewardInputs) -> RewardComponents:
    """The reward of one step under `config.mode`, discounted by `ppo.gamma`; a step whose epoch
    the governor rolled back gets the `governor` term `ppo.governor_penalty` in every mode."""
    components = _mode_reward(config, ppo.gamma, inputs)
    if inputs.rolled_back:
        return replace(components, governor=ppo.governor_penalty)
    return components


def _mode_reward(config: RewardConfig, gamma: float, inputs: RewardInputs) -> RewardComponents:
    """The terms of `config.mode`, all but the governor's."""
    w = config.weights
    potential_after = inputs.potential_after
    if config.mode == "escrow" and inputs.last_epoch:
        potential_after = inputs.fossil_potential_after  # the live seeds' shaping taken back
    shaping = w.stage_shaping * (gamma * potential_after - inputs.potential_before)
    if config.mode == "escrow":
        return _escrow(w, shaping, inputs)
    if config.mode == "shaped":
        return _shaped(w, shaping, inputs)
    if config.mode == "simplified":
        terminal = 0.0
        if inputs.last_epoch:
            terminal = (w.simplified_accuracy * inputs.val_accuracy / 100
                        + w.simplified_fossil * inputs.contributing_fossils)
        cost = w.simplified_op_cost if inputs.op is not Op.WAIT else 0.0
        return RewardComponents(stage_shaping=shaping, action_cost=cost, terminal=terminal)
    if not inputs.last_epoch:  # sparse
        return RewardComponents()
    score = inputs.val_accuracy / 100 - w.sparse_param_penalty * inputs.fossil_params / w.sparse_param_budget
    return RewardComponents(terminal=max(-1.0, min(1.0, score)) * w.sparse_scale)


def _shaped(w: RewardWeights, shaping: float, inputs: RewardInputs) -> RewardComponents:
    attribution = sum(_attribution(credit) for credit in inputs.credits)
    if inputs.total_improvement is not None and inputs.total_improvement < 0:
        attribution *= TOGETHER_HURT_DISCOUNT  # seeds together hurt: discount their credit
    return RewardComponents(
        attribution=attribution, stage_shaping=shaping,
        param_rent=_rent(w, inputs.params_added, inputs.host_params),
        action_cost=_action_cost(w, inputs), fossilize=_fossilize_term(w, inputs),
        terminal=w.terminal_accuracy * inputs.val_accuracy if inputs.last_epoch else 0.0,
    )


def _escrow(w: RewardWeights, shaping: float, inputs: RewardInputs) -> RewardComponents:
    """Growth that is kept: escrowed credit, shaping whose live part is taken back at the end,
    rent on the kept (fossilised) parameters, a charge for each undecided HOLDING seed, and a
    terminal term on the committed model's gain over the reference host."""
    assert inputs.reference_accuracy is not None, "mode escrow trains a reference host"
    kept_gain = inputs.committed_accuracy - inputs.reference_accuracy
    return RewardComponents(
        escrow=inputs.escrow, stage_shaping=shaping,
        param_rent=_rent(w, inputs.fossil_params, inputs.host_params),
        action_cost=_action_cost(w, inputs), holding=w.holding_cost * inputs.holding_undecided,
        fossilize=w.fossilize_wrong_stage if _fossilizes_wrong_stage(inputs) else 0.0,
        terminal=w.terminal_gain * kept_gain if inputs.last_epoch else 0.0,
    )


def escrow_targets(credits: tuple[SeedCredit, ...], real_gain: float | None) -> dict[str, float]:
    """Seed id -> credit target of each measured live seed (mode `escrow`): its attribution
    (bounded by its progress), with the positive credits together bounded by the real gain of
    the model over the reference host, so none while the seeds together hurt. A contribution
    measures dependency (the host adapts to a blended seed), the real gain what was added."""
    targets = {credit.seed_id: _attribution(credit) for credit in credits}
    positive = sum(t for t in targets.values() if t > 0)
    if real_gain is None or positive <= max(real_gain, 0.0):
        return targets
    scale = max(real_gain, 0.0) / positive
    return {seed: t * scale if t > 0 else t for seed, t in targets.items()}


def _rent(w: RewardWeights, params: int, host_params: int) -> float:
    """The rent of `params` seed parameters in a host of `host_params`."""
    host = max(host_params, w.host_param_floor)
    return -min(w.param_rent_scale * math.log1p(params / host), w.param_rent_max)


def _action_cost(w: RewardWeights, inputs: RewardInputs) -> float:
    costs = {Op.GERMINATE: w.germinate_cost, Op.PRUNE: w.prune_cost,
             Op.FOSSILIZE: w.fossilize_cost, Op.SET_ALPHA_TARGET: w.set_alpha_cost}
    return costs.get(inputs.op, 0.0)


def _attribution(credit: SeedCredit) -> float:
    """Bounded credit: the harmonic mean of contribution and progress when the seed's
    contribution is covered by real progress, the contribution itself otherwise."""
    c, p = credit.contribution, credit.progress
    if c >= p > 0:
        return 2 * p * c / (p + c)
    return c


def _fossilize_term(w: RewardWeights, inputs: RewardInputs) -> float:
    if inputs.op is not Op.FOSSILIZE:
        return 0.0
    if _fossilizes_wrong_stage(inputs):
        return w.fossilize_wrong_stage
    c = inputs.target_contribution
    if c is not None and c >= 1.0:
        return w.fossilize_bonus + w.fossilize_bonus_per_point * c
    return 0.0


def _fossilizes_wrong_stage(inputs: RewardInputs) -> bool:
    return inputs.op is Op.FOSSILIZE and inputs.target_stage is not SeedStage.HOLDING
