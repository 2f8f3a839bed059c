"""SeedSlot: one place in the host where a seed germinates, trains, blends, and fossilises or dies.

The slot enforces the lifecycle of PIPELINE.md section 2 (invalid transitions raise
`LifecycleError`; a failed gate returns `ok=False`), owns its seed's optimiser, and returns a
typed `SlotUpdate` from every operation. It never emits telemetry.
"""

from __future__ import annotations

import torch
from torch import nn

from esper.kasmina.alpha import AlphaController, AlphaSchedule
from esper.kasmina.blending import BlendGate, Seed, blend
from esper.kasmina.blueprints import build_blueprint, param_count
from esper.kasmina.errors import BlueprintError, LifecycleError
from esper.kasmina.gates import check_gate
from esper.kasmina.optim import SGD
from esper.kasmina.state import (
    GateEvaluation,
    GradientStats,
    Initiator,
    SeedState,
    SlotUpdate,
    StageTransition,
)
from esper.leyline.config import GatesConfig, SlotsConfig
from esper.leyline.stages import (
    ACTIVE_STAGES,
    FAILURE_STAGES,
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
# Stages a seed can be pruned from.
PRUNABLE_STAGES = frozenset(
    {SeedStage.GERMINATED, SeedStage.TRAINING, SeedStage.BLENDING, SeedStage.HOLDING}
)


class SeedSlot(nn.Module):
    """A slot after one host block; identity while it holds no active seed.

    :param slot_id: ``r0c{i}``.
    :param channels: channels of the host activation at the slot.
    :param probe_shape: (C, H, W) of that activation, used to shape-check new blueprints.
    :param grad_clip: gradient-norm clip applied to the seed alone before its optimiser step.
    """

    def __init__(
        self,
        slot_id: str,
        channels: int,
        probe_shape: tuple[int, int, int],
        slots: SlotsConfig,
        gates: GatesConfig,
        grad_clip: float,
    ) -> None:
        super().__init__()
        self.slot_id = slot_id
        self.channels = channels
        self.probe_shape = probe_shape
        self.slots_config = slots
        self.gates_config = gates
        self.grad_clip = grad_clip
        self.seed: Seed | None = None
        self.state: SeedState | None = None
        self.alpha_controller: AlphaController | None = None
        self.optimizer: SGD | None = None
        # Follows .to(device) and .to(dtype): germinate() builds seeds on the model's device,
        # in its floating dtype.
        self.register_buffer("_device_anchor", torch.empty(0), persistent=False)
        self._isolation_armed = False
        self._isolation_leak: torch.Tensor | None = None  # bool scalar, set by a backward hook

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
        return (self.stage is SeedStage.BLENDING and self.is_isolated and self.state is not None
                and self.state.algorithm is AlphaAlgorithm.ADD and self.alpha == 1.0)

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
            and self.state.stage in PRUNABLE_STAGES
            and self.state.epochs_total >= self.slots_config.min_prune_age
        )

    def seed_parameters(self) -> list[nn.Parameter]:
        """The seed's parameters (blueprint and blend gate); empty without a seed."""
        return [] if self.seed is None else list(self.seed.parameters())

    @property
    def seed_param_count(self) -> int:
        return 0 if self.seed is None else param_count(self.seed)

    # ---------------------------------------------------------------- forward

    def _seed_input(self, host: torch.Tensor) -> torch.Tensor:
        """What the seed reads: the detached host activation while isolated."""
        return host.detach() if self.is_isolated else host

    def forward(self, host: torch.Tensor, alpha: torch.Tensor | None = None) -> torch.Tensor:
        """Pass the host activation (N, C, H, W) through the slot.

        :param alpha: optional per-sample alpha override, shape (N,), for the fused
            counterfactual validation; None uses the controller's alpha.
        """
        if self.seed is None or self.state is None or self.state.stage not in ACTIVE_STAGES:
            return host
        x = self._seed_input(host)
        if self.state.stage is SeedStage.TRAINING:
            if not torch.is_grad_enabled():
                return host  # s - s.detach() is exactly 0: skip the seed's compute
            s = self.seed.blueprint(x)  # (N, C, H, W)
            out = host + (s - s.detach())  # straight-through: equals host, seed gets gradient
            host_factor: float | torch.Tensor = 1.0
        else:
            a: float | torch.Tensor = self.alpha
            if alpha is not None:
                a = alpha.to(host.dtype).view(-1, 1, 1, 1)  # (N, 1, 1, 1)
            s = self.seed.blueprint(x)  # (N, C, H, W)
            gate = None if self.seed.gate is None else self.seed.gate(x)  # (N, 1, 1, 1)
            out, host_factor = blend(self.state.algorithm, host, x, s, a, gate)
        if self._isolation_armed and self.is_isolated and host.requires_grad:
            self._watch_isolation(host, out, host_factor)
        return out

    def _watch_isolation(
        self, host: torch.Tensor, out: torch.Tensor, host_factor: float | torch.Tensor
    ) -> None:
        """Hooks that flag a leak: host's gradient must be exactly host_factor * grad(out)."""
        captured: dict[str, torch.Tensor] = {}

        def on_out(grad: torch.Tensor) -> None:
            captured["out"] = grad

        def on_host(grad: torch.Tensor) -> None:
            expected = captured["out"] * host_factor
            scale = expected.abs().amax() + 1e-12
            leak = (grad - expected).abs().amax() > 1e-4 * scale
            previous = self._isolation_leak
            self._isolation_leak = leak if previous is None else previous | leak

        out.register_hook(on_out)
        host.register_hook(on_host)

    def arm_isolation_check(self) -> None:
        """Check gradient isolation on the next forward/backward (cheap; one batch)."""
        self._isolation_armed = True

    def collect_isolation_check(self) -> torch.Tensor | None:
        """Disarm and return the leak flag (bool scalar tensor) of the armed backward, if any."""
        leak, self._isolation_leak, self._isolation_armed = self._isolation_leak, None, False
        return leak

    # ---------------------------------------------------------------- lifecycle

    def _transition(self, to_stage: SeedStage, initiator: Initiator, reason: str) -> StageTransition:
        state = self._require_state()
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

    def _require_state(self) -> SeedState:
        if self.state is None:
            raise LifecycleError(f"slot {self.slot_id} has no seed")
        return self.state

    def _gate(self, gate: GateLevel, initiator: Initiator) -> GateEvaluation:
        state = self._require_state()
        result = check_gate(gate, state, self.alpha_controller, self.gates_config)
        return GateEvaluation(slot_id=self.slot_id, seed_id=state.seed_id, result=result,
                              initiator=initiator)

    def _gated_transition(
        self, gate: GateLevel, initiator: Initiator
    ) -> tuple[GateEvaluation, StageTransition | None]:
        evaluation = self._gate(gate, initiator)
        if not evaluation.result.passed:
            return evaluation, None
        transition = self._transition(evaluation.result.target_stage, initiator, evaluation.result.message)
        if transition.to_stage is SeedStage.BLENDING:
            self.alpha_controller = AlphaController(0.0)
            self.alpha_controller.retarget(self._require_state().schedule)
        return evaluation, transition

    def germinate(
        self,
        blueprint: str,
        seed_id: str,
        *,
        accuracy: float,
        algorithm: AlphaAlgorithm = AlphaAlgorithm.ADD,
        schedule: AlphaSchedule = DEFAULT_SCHEDULE,
    ) -> SlotUpdate:
        """Build `blueprint`, shape-check it, run G0 and move DORMANT -> GERMINATED.

        :param accuracy: the model's current val accuracy (the seed's baseline).
        :param schedule: the alpha ramp used when the seed enters BLENDING.
        Raises:
            LifecycleError: the slot is not empty (a live seed or a cooldown).
            BlueprintError: unknown blueprint, or its output shape differs from its input's.
        """
        if self.state is not None:
            raise LifecycleError(
                f"slot {self.slot_id} is not empty (seed {self.state.seed_id} in {self.state.stage.name})"
            )
        anchor = self._device_anchor
        place = {"device": anchor.device, "dtype": anchor.dtype}
        module = build_blueprint(blueprint, self.channels).to(**place)
        probe = torch.randn(2, *self.probe_shape, **place)  # (2, C, H, W)
        with torch.no_grad():
            out = module(probe)
        if out.shape != probe.shape:
            raise BlueprintError(
                f"blueprint {blueprint!r} maps {tuple(probe.shape)} to {tuple(out.shape)} in slot "
                f"{self.slot_id}; seeds must preserve shape"
            )
        gate = BlendGate(self.channels).to(**place) if algorithm is AlphaAlgorithm.GATE else None
        seed = Seed(module, gate)
        state = SeedState(
            seed_id=seed_id,
            slot_id=self.slot_id,
            blueprint=blueprint,
            algorithm=algorithm,
            schedule=schedule,
            param_count=param_count(seed),
            accuracy_at_germination=accuracy,
        )
        self.state = state
        evaluation = self._gate(GateLevel.G0, "policy")
        if not evaluation.result.passed:
            self.state = None
            return SlotUpdate(self.slot_id, ok=False, records=(evaluation,))
        transition = self._transition(SeedStage.GERMINATED, "policy", evaluation.result.message)
        self.seed = seed
        params = list(seed.parameters())
        self.optimizer = (
            SGD(params, lr=self.slots_config.seed_lr, momentum=self.slots_config.seed_momentum)
            if params else None
        )
        return SlotUpdate(self.slot_id, ok=True, records=(evaluation, transition))

    def advance(self, initiator: Initiator = "policy") -> SlotUpdate:
        """Try the next stage: GERMINATED -(G1)-> TRAINING -(G2)-> BLENDING -(G3)-> HOLDING.

        Raises:
            LifecycleError: no seed, or a stage with nothing to advance to (use `fossilize`
                from HOLDING).
        """
        stage = self._require_state().stage
        if stage not in _ADVANCE_GATES:
            raise LifecycleError(f"slot {self.slot_id}: cannot advance from {stage.name}")
        evaluation, transition = self._gated_transition(_ADVANCE_GATES[stage], initiator)
        records = (evaluation,) if transition is None else (evaluation, transition)
        return SlotUpdate(self.slot_id, ok=transition is not None, records=records)

    def fossilize(self, initiator: Initiator = "policy") -> SlotUpdate:
        """Run G5 and move HOLDING -> FOSSILIZED.

        Raises:
            LifecycleError: no seed, or the seed is not in HOLDING.
        """
        stage = self._require_state().stage
        if stage is not SeedStage.HOLDING:
            raise LifecycleError(f"slot {self.slot_id}: cannot fossilize from {stage.name}")
        evaluation, transition = self._gated_transition(GateLevel.G5, initiator)
        records = (evaluation,) if transition is None else (evaluation, transition)
        return SlotUpdate(self.slot_id, ok=transition is not None, records=records)

    def set_alpha_target(self, schedule: AlphaSchedule, initiator: Initiator = "policy") -> SlotUpdate:
        """Ramp alpha to a new target; from HOLDING the seed goes back to BLENDING (G3 again).

        Raises:
            LifecycleError: not BLENDING/HOLDING, the controller is still ramping, or the target
                is outside (0, 1].
        """
        stage = self._require_state().stage
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
            records = (self._transition(SeedStage.BLENDING, initiator, "alpha retarget"),)
        controller.retarget(schedule)
        return SlotUpdate(self.slot_id, ok=True, records=records)

    def prune(self, initiator: Initiator = "policy", reason: str = "pruned") -> SlotUpdate:
        """Remove a live seed now: -> PRUNED, then the cooldown runs in `step_epoch`.

        Raises:
            LifecycleError: no seed, a fossilized seed, or a seed already cooling down.
        """
        state = self._require_state()
        if state.stage not in PRUNABLE_STAGES:
            raise LifecycleError(f"slot {self.slot_id}: cannot prune a seed in {state.stage.name}")
        transition = self._transition(SeedStage.PRUNED, initiator, reason)
        state.forget_gradients()
        self.seed = None
        self.optimizer = None
        self.alpha_controller = None
        return SlotUpdate(self.slot_id, ok=True, records=(transition,))

    def step_epoch(self) -> SlotUpdate:
        """End of an epoch: count it, tick alpha, run the cooldown, try auto-forward gates."""
        state = self.state
        if state is None:
            return SlotUpdate(self.slot_id, ok=True)
        records: list[GateEvaluation | StageTransition] = []
        state.epochs_total += 1
        state.epochs_in_stage += 1
        if state.stage is SeedStage.BLENDING and self.alpha_controller is not None:
            self.alpha_controller.tick()
        if state.stage in FAILURE_STAGES:
            records.extend(self._cooldown())
            return SlotUpdate(self.slot_id, ok=True, records=tuple(records))
        gate = _AUTO_GATES.get(state.stage)
        if gate is not None and gate.name in self.gates_config.auto_forward:
            evaluation, transition = self._gated_transition(gate, "auto")
            records.append(evaluation)
            if transition is not None:
                records.append(transition)
        return SlotUpdate(self.slot_id, ok=True, records=tuple(records))

    def _cooldown(self) -> list[StageTransition]:
        """PRUNED -> EMBARGOED (next epoch) -> RESETTING (after embargo_epochs) -> DORMANT
        (after resetting_epochs), when the slot becomes empty again."""
        state = self._require_state()
        records = []
        if state.stage is SeedStage.PRUNED:
            records.append(self._transition(SeedStage.EMBARGOED, "lifecycle", "embargo"))
        if (state.stage is SeedStage.EMBARGOED
                and state.epochs_in_stage >= self.slots_config.embargo_epochs):
            records.append(self._transition(SeedStage.RESETTING, "lifecycle", "embargo over"))
        if (state.stage is SeedStage.RESETTING
                and state.epochs_in_stage >= self.slots_config.resetting_epochs):
            records.append(self._transition(SeedStage.DORMANT, "lifecycle", "slot reset"))
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

    def record_gradients(self, stats: GradientStats, host_gradient_norm: float | None) -> None:
        """Store a gradient measurement of this slot's seed."""
        self._require_state().record_gradients(stats, host_gradient_norm)

    # ---------------------------------------------------------------- optimisation

    @property
    def is_trainable(self) -> bool:
        """The seed runs in forward and has parameters for its optimiser."""
        return self.optimizer is not None and self.stage in ACTIVE_STAGES

    def zero_grad_seed(self) -> None:
        if self.optimizer is not None:
            self.optimizer.zero_grad(set_to_none=True)

    def seed_step(self) -> None:
        """Clip the seed's gradient norm to `grad_clip` (separately from the host) and step."""
        if self.is_trainable:
            assert self.optimizer is not None
            torch.nn.utils.clip_grad_norm_(self.seed_parameters(), self.grad_clip)
            self.optimizer.step()
