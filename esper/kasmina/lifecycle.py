"""SeedLifecycle: the seed lifecycle of one slot as a state machine that imports no torch.

It holds the seed's `SeedState` and alpha controller and decides every stage change of
docs/pipeline.md §2: transitions and their validity, the gates guarding them, auto-forward,
the prune cooldown and the alpha ramp. Each operation returns a typed `SlotUpdate`; invalid
operations raise `LifecycleError`. `SeedSlot` keeps the module side (seed, forward, optimiser).
"""

from __future__ import annotations

from dataclasses import replace

from esper.kasmina.alpha import AlphaController, AlphaSchedule
from esper.kasmina.errors import LifecycleError
from esper.kasmina.gates import check_gate
from esper.kasmina.state import GateEvaluation, Initiator, SeedState, SlotUpdate, StageTransition
from esper.leyline.config import GatesConfig, SlotsConfig
from esper.leyline.stages import (
    ACTIVE_STAGES,
    FAILURE_STAGES,
    LIVE_STAGES,
    AlphaAlgorithm,
    AlphaCurve,
    BlendTempo,
    GateLevel,
    SeedStage,
    is_valid_transition,
)

DEFAULT_SCHEDULE = AlphaSchedule(target=1.0, epochs=BlendTempo.STANDARD, curve=AlphaCurve.LINEAR)

# advance(): the gate that guards the next stage of each advanceable stage.
_ADVANCE_GATES: dict[SeedStage, GateLevel] = {
    SeedStage.GERMINATED: GateLevel.G1,
    SeedStage.TRAINING: GateLevel.G2,
    SeedStage.BLENDING: GateLevel.G3,
}
# step_epoch(): gates that may auto-forward a seed, by stage (G5 auto-fossilises).
_AUTO_GATES: dict[SeedStage, GateLevel] = {**_ADVANCE_GATES, SeedStage.HOLDING: GateLevel.G5}
# The seed reads host.detach() in these stages (CNN hosts keep isolation through BLENDING).
ISOLATED_STAGES = frozenset({SeedStage.TRAINING, SeedStage.BLENDING})


class SeedLifecycle:
    """Stage, gates, cooldown and alpha ramp of the seed in slot `slot_id` (None: empty slot)."""

    def __init__(self, slot_id: str, slots: SlotsConfig, gates: GatesConfig) -> None:
        self.slot_id = slot_id
        self.slots_config = slots
        self.gates_config = gates
        self.state: SeedState | None = None
        self.alpha_controller: AlphaController | None = None  # created on entering BLENDING

    # ---------------------------------------------------------------- read-only views

    @property
    def stage(self) -> SeedStage:
        """The seed's stage, DORMANT for an empty slot."""
        return SeedStage.DORMANT if self.state is None else self.state.stage

    @property
    def is_empty(self) -> bool:
        return self.state is None

    @property
    def alpha(self) -> float:
        """Current blending weight (0 without a controller, i.e. before BLENDING)."""
        return 0.0 if self.alpha_controller is None else self.alpha_controller.alpha

    @property
    def alpha_target(self) -> float:
        """The controller's target; before BLENDING the germination schedule's target (0 empty)."""
        if self.alpha_controller is not None:
            return self.alpha_controller.target
        return 0.0 if self.state is None else self.state.schedule.target

    @property
    def alpha_holding(self) -> bool:
        """The alpha controller exists and sits on its target (SET_ALPHA_TARGET may act)."""
        return self.alpha_controller is not None and self.alpha_controller.is_holding

    @property
    def is_isolated(self) -> bool:
        return self.stage in ISOLATED_STAGES

    @property
    def cuts_host_gradient(self) -> bool:
        """The host path through the slot is multiplied by exactly 0 (ADD at alpha 1) while the
        seed reads a detached host: no training gradient reaches the host before the slot."""
        state = self.state  # BLENDING is an isolated stage
        return (state is not None and state.stage is SeedStage.BLENDING
                and state.algorithm is AlphaAlgorithm.ADD and self.alpha == 1.0)

    @property
    def counterfactual_eligible(self) -> bool:
        """Active, not fossilized, alpha > 0: the fused validation measures its contribution."""
        return (
            self.stage in ACTIVE_STAGES
            and self.stage is not SeedStage.FOSSILIZED
            and self.alpha > 0.0
        )

    @property
    def can_prune(self) -> bool:
        """A live, non-fossilized seed at least `slots.min_prune_age` epochs old."""
        return (
            self.state is not None
            and self.state.stage in LIVE_STAGES
            and self.state.epochs_total >= self.slots_config.min_prune_age
        )

    def require_state(self) -> SeedState:
        """The seed's state. Raises `LifecycleError` when the slot is empty."""
        if self.state is None:
            raise LifecycleError(f"slot {self.slot_id} has no seed")
        return self.state

    def require_empty(self) -> None:
        """Raises `LifecycleError` unless the slot is empty (no live seed, no cooldown)."""
        if self.state is not None:
            raise LifecycleError(
                f"slot {self.slot_id} is not empty (seed {self.state.seed_id} in {self.state.stage.name})"
            )

    # ---------------------------------------------------------------- transitions

    def transition(self, to_stage: SeedStage, initiator: Initiator, reason: str) -> StageTransition:
        """Move the seed to `to_stage`. Raises `LifecycleError` for an invalid transition."""
        state = self.require_state()
        if not is_valid_transition(state.stage, to_stage):
            raise LifecycleError(
                f"slot {self.slot_id}: invalid transition {state.stage.name} -> {to_stage.name}"
            )
        record = StageTransition(
            slot_id=self.slot_id,
            seed_id=state.seed_id,
            blueprint=state.blueprint,
            from_stage=state.stage,
            to_stage=to_stage,
            initiator=initiator,
            epochs_in_previous_stage=state.epochs_in_stage,
            epochs_total=state.epochs_total,
            reason=reason,
        )
        state.enter_stage(to_stage)
        return record

    def _gate(self, gate: GateLevel, initiator: Initiator) -> GateEvaluation:
        state = self.require_state()
        result = check_gate(gate, state, self.alpha_controller, self.gates_config)
        return GateEvaluation(slot_id=self.slot_id, seed_id=state.seed_id, result=result,
                              initiator=initiator)

    def _gated_transition(
        self, gate: GateLevel, initiator: Initiator
    ) -> tuple[GateEvaluation, StageTransition | None]:
        """Check `gate`; when it passes, enter its stage (BLENDING starts the alpha ramp)."""
        evaluation = self._gate(gate, initiator)
        if not evaluation.result.passed:
            return evaluation, None
        transition = self.transition(evaluation.result.target_stage, initiator, evaluation.result.message)
        if transition.to_stage is SeedStage.BLENDING:
            self.alpha_controller = AlphaController(0.0)
            self.alpha_controller.retarget(self.require_state().schedule)
        return evaluation, transition

    def _gated_update(self, gate: GateLevel, initiator: Initiator) -> SlotUpdate:
        evaluation, transition = self._gated_transition(gate, initiator)
        records = (evaluation,) if transition is None else (evaluation, transition)
        return SlotUpdate(self.slot_id, ok=transition is not None, records=records)

    # ---------------------------------------------------------------- operations

    def germinate(
        self,
        blueprint: str,
        seed_id: str,
        *,
        accuracy: float,
        algorithm: AlphaAlgorithm,
        schedule: AlphaSchedule,
        param_count: int,
    ) -> SlotUpdate:
        """Create the seed's state, run G0 and move DORMANT -> GERMINATED (empty again if G0
        fails). Raises `LifecycleError` when the slot is not empty."""
        self.require_empty()
        self.state = SeedState(
            seed_id=seed_id,
            slot_id=self.slot_id,
            blueprint=blueprint,
            algorithm=algorithm,
            schedule=schedule,
            param_count=param_count,
            accuracy_at_germination=accuracy,
        )
        evaluation = self._gate(GateLevel.G0, "policy")
        if not evaluation.result.passed:
            self.state = None
            return SlotUpdate(self.slot_id, ok=False, records=(evaluation,))
        transition = self.transition(SeedStage.GERMINATED, "policy", evaluation.result.message)
        return SlotUpdate(self.slot_id, ok=True, records=(evaluation, transition))

    def advance(self, initiator: Initiator = "policy") -> SlotUpdate:
        """Try the next stage: GERMINATED -(G1)-> TRAINING -(G2)-> BLENDING -(G3)-> HOLDING.

        Raises:
            LifecycleError: no seed, or a stage with nothing to advance to (use `fossilize`
                from HOLDING).
        """
        stage = self.require_state().stage
        if stage not in _ADVANCE_GATES:
            raise LifecycleError(f"slot {self.slot_id}: cannot advance from {stage.name}")
        return self._gated_update(_ADVANCE_GATES[stage], initiator)

    def fossilize(self, initiator: Initiator = "policy") -> SlotUpdate:
        """Run G5 and move HOLDING -> FOSSILIZED.

        Raises:
            LifecycleError: no seed, or the seed is not in HOLDING.
        """
        stage = self.require_state().stage
        if stage is not SeedStage.HOLDING:
            raise LifecycleError(f"slot {self.slot_id}: cannot fossilize from {stage.name}")
        return self._gated_update(GateLevel.G5, initiator)

    def set_alpha_target(self, schedule: AlphaSchedule, initiator: Initiator = "policy") -> SlotUpdate:
        """Ramp alpha to a new target; from HOLDING the seed goes back to BLENDING (G3 again).

        Raises:
            LifecycleError: not BLENDING/HOLDING, the controller is still ramping, or the target
                is outside (0, 1].
        """
        stage = self.require_state().stage
        controller = self.alpha_controller
        if stage not in (SeedStage.BLENDING, SeedStage.HOLDING) or controller is None:
            raise LifecycleError(f"slot {self.slot_id}: cannot set alpha target in {stage.name}")
        if not controller.is_holding:
            raise LifecycleError(f"slot {self.slot_id}: alpha is still ramping")
        if not 0.0 < schedule.target <= 1.0:
            raise LifecycleError(f"alpha target must be in (0, 1], got {schedule.target}")
        if schedule.target == controller.alpha:
            return SlotUpdate(self.slot_id, ok=True)  # already there: nothing to ramp
        records: tuple[StageTransition, ...] = ()
        if stage is SeedStage.HOLDING:
            records = (self.transition(SeedStage.BLENDING, initiator, "alpha retarget"),)
        controller.retarget(schedule)
        return SlotUpdate(self.slot_id, ok=True, records=records)

    def prune(self, initiator: Initiator = "policy", reason: str = "pruned") -> SlotUpdate:
        """Enter PRUNED now, forgetting the gradient signals and the alpha controller; the
        cooldown runs in `step_epoch`.

        Raises:
            LifecycleError: no seed, a fossilized seed, or a seed already cooling down.
        """
        state = self.require_state()
        if state.stage not in LIVE_STAGES:
            raise LifecycleError(f"slot {self.slot_id}: cannot prune a seed in {state.stage.name}")
        transition = self.transition(SeedStage.PRUNED, initiator, reason)
        state.forget_gradients()
        self.alpha_controller = None
        return SlotUpdate(self.slot_id, ok=True, records=(transition,))

    def step_epoch(self) -> SlotUpdate:
        """End of an epoch: count it, tick alpha, run the cooldown, try auto-forward gates."""
        state = self.state
        if state is None:
            return SlotUpdate(self.slot_id, ok=True)
        state.epochs_total += 1
        state.epochs_in_stage += 1
        if state.stage is SeedStage.BLENDING and self.alpha_controller is not None:
            self.alpha_controller.tick()
        if state.stage in FAILURE_STAGES:
            return SlotUpdate(self.slot_id, ok=True, records=tuple(self._cooldown()))
        gate = _AUTO_GATES.get(state.stage)
        if gate is None or gate.name not in self.gates_config.auto_forward:
            return SlotUpdate(self.slot_id, ok=True)
        return replace(self._gated_update(gate, "auto"), ok=True)  # a failed gate is no error

    def _cooldown(self) -> list[StageTransition]:
        """PRUNED -> EMBARGOED (next epoch) -> RESETTING (after embargo_epochs) -> DORMANT
        (after resetting_epochs), when the slot becomes empty again."""
        state = self.require_state()
        records = []
        if state.stage is SeedStage.PRUNED:
            records.append(self.transition(SeedStage.EMBARGOED, "lifecycle", "embargo"))
        if (state.stage is SeedStage.EMBARGOED
                and state.epochs_in_stage >= self.slots_config.embargo_epochs):
            records.append(self.transition(SeedStage.RESETTING, "lifecycle", "embargo over"))
        if (state.stage is SeedStage.RESETTING
                and state.epochs_in_stage >= self.slots_config.resetting_epochs):
            records.append(self.transition(SeedStage.DORMANT, "lifecycle", "slot reset"))
            self.state = None
        return records

    # ---------------------------------------------------------------- metrics

    def record_accuracy(self, accuracy: float) -> None:
        """Record this epoch's model val accuracy on a live seed (ignored when empty/cooling)."""
        if self.state is not None and self.state.stage not in FAILURE_STAGES:
            self.state.record_accuracy(accuracy)

    def record_contribution(self, contribution: float | None) -> None:
        """Record a counterfactual contribution; None (not measured) leaves the state as is."""
        if contribution is not None and self.state is not None:
            self.state.record_contribution(contribution)
