"""Turn what a slot did (gate checks, stage transitions) into lifecycle telemetry events."""

from __future__ import annotations

from dataclasses import dataclass

from esper.kasmina.host import MorphogeneticModel
from esper.kasmina.state import GateEvaluation, SeedState, SlotUpdate, StageTransition
from esper.leyline.config import TelemetryConfig
from esper.leyline.emitter import Emitter
from esper.leyline.events import (SeedFossilizedPayload, SeedGateEvaluatedPayload,
                                  SeedGerminatedPayload, SeedPrunedPayload,
                                  SeedStageChangedPayload, TelemetryEventType)
from esper.leyline.stages import SeedStage


@dataclass(frozen=True)
class StepContext:
    """The step fields stamped on every event of one env's epoch."""

    batch: int
    env_id: int
    epoch: int
    schedule_epoch: int  # the epoch the batch schedule draws this step's order for (global)


class LifecycleReporter:
    """Emits SEED_* events for slot updates; SEED_GATE_EVALUATED only with `gate_events`,
    gradient fields on SEED_STAGE_CHANGED only with `slot_health` (and only once measured)."""

    def __init__(self, hub: Emitter, telemetry: TelemetryConfig) -> None:
        self.hub = hub
        self.gate_events = telemetry.enabled("gate_events")
        self.slot_health = telemetry.enabled("slot_health")

    def report(self, update: SlotUpdate, model: MorphogeneticModel, ctx: StepContext) -> None:
        """Emit the events of every record of `update`, in order."""
        slot = model.slot(update.slot_id)
        for record in update.records:
            if isinstance(record, GateEvaluation):
                if self.gate_events:
                    self._gate(record, ctx)
            else:
                self._transition(record, slot.state, slot.seed_param_count, ctx)

    def _emit(self, event_type: TelemetryEventType, payload: object, ctx: StepContext,
              seed_id: str, slot_id: str, message: str) -> None:
        self.hub.emit(event_type, payload, batch=ctx.batch, env_id=ctx.env_id, epoch=ctx.epoch,
                      seed_id=seed_id, slot_id=slot_id, message=message)

    def _gate(self, record: GateEvaluation, ctx: StepContext) -> None:
        result = record.result
        payload = SeedGateEvaluatedPayload(
            gate=result.gate.name, passed=result.passed, target_stage=result.target_stage.name,
            checks_passed=result.checks_passed, checks_failed=result.checks_failed,
            message=result.message)
        self._emit(TelemetryEventType.SEED_GATE_EVALUATED, payload, ctx,
                   record.seed_id, record.slot_id, result.message)

    def _transition(self, record: StageTransition, state: SeedState | None, params: int,
                    ctx: StepContext) -> None:
        ids = (record.seed_id, record.slot_id)
        health = state if self.slot_health and state is not None else None
        measured = health is not None and health.gradient_health is not None
        changed = SeedStageChangedPayload(
            from_stage=record.from_stage.name, to_stage=record.to_stage.name,
            gradient_health=health.gradient_health if measured else None,
            has_vanishing=health.has_vanishing if measured else None,
            has_exploding=health.has_exploding if measured else None,
            isolation_violations=health.isolation_violations if measured else None,
            seed_gradient_norm_ratio=health.seed_gradient_norm_ratio if measured else None)
        self._emit(TelemetryEventType.SEED_STAGE_CHANGED, changed, ctx, *ids, record.reason)
        improvement = 0.0 if state is None else state.total_improvement
        if record.to_stage is SeedStage.GERMINATED and state is not None:
            germinated = SeedGerminatedPayload(record.blueprint, params,
                                               f"{state.algorithm.value}/{state.schedule.curve.value}")
            self._emit(TelemetryEventType.SEED_GERMINATED, germinated, ctx, *ids, record.reason)
        elif record.to_stage is SeedStage.FOSSILIZED and state is not None:
            fossilized = SeedFossilizedPayload(record.blueprint, params,
                                               state.counterfactual_contribution, improvement)
            self._emit(TelemetryEventType.SEED_FOSSILIZED, fossilized, ctx, *ids, record.reason)
        elif record.to_stage is SeedStage.PRUNED:
            pruned = SeedPrunedPayload(record.blueprint, record.reason, record.initiator, improvement)
            self._emit(TelemetryEventType.SEED_PRUNED, pruned, ctx, *ids, record.reason)
