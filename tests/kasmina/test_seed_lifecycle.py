"""SeedLifecycle alone, without torch: the transition table, gates, auto-forward, cooldown, prune."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from typing import Any

import pytest

from esper.experiment import spec_from_dict
from esper.kasmina.alpha import AlphaController, AlphaSchedule
from esper.kasmina.errors import LifecycleError
from esper.kasmina.lifecycle import DEFAULT_SCHEDULE, SeedLifecycle
from esper.kasmina.state import GateEvaluation, StageTransition
from esper.leyline.stages import AlphaAlgorithm, AlphaCurve, SeedStage

S = SeedStage
# docs/pipeline.md §2, written out: from -> the stages it may move to.
ALLOWED: dict[SeedStage, set[SeedStage]] = {
    S.UNKNOWN: set(),
    S.DORMANT: {S.GERMINATED},
    S.GERMINATED: {S.TRAINING, S.PRUNED},
    S.TRAINING: {S.BLENDING, S.PRUNED},
    S.BLENDING: {S.HOLDING, S.PRUNED},
    S.HOLDING: {S.FOSSILIZED, S.BLENDING, S.PRUNED},
    S.FOSSILIZED: set(),
    S.PRUNED: {S.EMBARGOED},
    S.EMBARGOED: {S.RESETTING},
    S.RESETTING: {S.DORMANT},
}


def lifecycle(auto_forward: tuple[str, ...] = (), **slots: Any) -> SeedLifecycle:
    """An empty slot's lifecycle with the schema defaults, `slots` fields replaced."""
    spec = spec_from_dict({"name": "lifecycle-test", "gates": {"auto_forward": list(auto_forward)}})
    return SeedLifecycle("r0c0", dataclasses.replace(spec.slots, **slots), spec.gates)


def germinated(auto_forward: tuple[str, ...] = (), **slots: Any) -> SeedLifecycle:
    machine = lifecycle(auto_forward, **slots)
    assert machine.germinate("conv_light", "seed0", accuracy=50.0, algorithm=AlphaAlgorithm.ADD,
                             schedule=DEFAULT_SCHEDULE, param_count=10).ok
    return machine


def in_stage(stage: SeedStage, **fields: Any) -> SeedLifecycle:
    """A lifecycle whose seed sits in `stage` (set by hand), with `fields` on its state."""
    machine = germinated()
    state = machine.require_state()
    state.stage = stage
    for name, value in fields.items():
        setattr(state, name, value)
    return machine


def healthy(machine: SeedLifecycle) -> SeedLifecycle:
    state = machine.require_state()
    state.gradient_health, state.has_exploding = 1.0, False
    return machine


def test_importing_the_lifecycle_does_not_import_torch() -> None:
    code = "import sys, esper.kasmina.lifecycle; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("to_stage", list(SeedStage), ids=lambda s: s.name)
@pytest.mark.parametrize("from_stage", list(SeedStage), ids=lambda s: s.name)
def test_every_transition_is_allowed_exactly_as_the_table_says(
    from_stage: SeedStage, to_stage: SeedStage
) -> None:
    machine = in_stage(from_stage, epochs_in_stage=3, epochs_total=7)
    if to_stage not in ALLOWED[from_stage]:
        invalid = f"invalid transition {from_stage.name} -> {to_stage.name}"
        with pytest.raises(LifecycleError, match=invalid):
            machine.transition(to_stage, "policy", "test")
        assert machine.stage is from_stage
        return
    record = machine.transition(to_stage, "governor", "test")
    assert record == StageTransition("r0c0", "seed0", "conv_light", from_stage, to_stage, "governor",
                                     epochs_in_previous_stage=3, epochs_total=7, reason="test")
    state = machine.require_state()
    assert (state.stage, state.previous_stage, state.epochs_in_stage) == (to_stage, from_stage, 0)


def test_germinate_runs_g0_and_fails_back_to_empty() -> None:
    with pytest.raises(LifecycleError, match="not empty"):
        germinated().germinate("conv_light", "seed1", accuracy=0.0, algorithm=AlphaAlgorithm.ADD,
                               schedule=DEFAULT_SCHEDULE, param_count=1)
    empty = lifecycle()
    failed = empty.germinate("", "", accuracy=0.0, algorithm=AlphaAlgorithm.ADD,
                             schedule=DEFAULT_SCHEDULE, param_count=0)
    assert not failed.ok and empty.is_empty and empty.stage is SeedStage.DORMANT
    assert failed.gate_evaluations[0].result.checks_failed == ("seed_id_missing", "blueprint_id_missing")


def test_advance_walks_the_gates_and_blending_starts_the_ramp() -> None:
    machine = germinated()
    assert machine.advance().transitions[0].to_stage is SeedStage.TRAINING
    blocked = machine.advance()
    assert not blocked.ok
    assert blocked.gate_evaluations[0].result.checks_failed[0] == "epochs_in_stage_below_min"
    healthy(machine).require_state().epochs_in_stage = 10
    assert machine.advance().ok and machine.stage is SeedStage.BLENDING
    assert machine.alpha_controller is not None and machine.alpha == 0.0 and machine.alpha_target == 1.0
    assert not machine.advance().ok  # G3: still ramping
    for _ in range(DEFAULT_SCHEDULE.epochs):
        machine.step_epoch()
    assert machine.alpha_holding and machine.advance().ok and machine.stage is SeedStage.HOLDING
    with pytest.raises(LifecycleError, match="cannot advance from HOLDING"):
        machine.advance()
    assert not machine.fossilize().ok  # contribution not measured
    machine.record_contribution(2.0)
    assert machine.fossilize().ok and machine.stage is SeedStage.FOSSILIZED


@pytest.mark.parametrize(
    ("stage", "gate", "next_stage"),
    [(S.GERMINATED, "G1", S.TRAINING), (S.TRAINING, "G2", S.BLENDING),
     (S.BLENDING, "G3", S.HOLDING), (S.HOLDING, "G5", S.FOSSILIZED)],
    ids=lambda v: getattr(v, "name", v),
)
@pytest.mark.parametrize("enabled", [True, False], ids=["auto", "manual"])
def test_auto_forward_moves_a_passing_seed_only_when_its_gate_is_listed(
    stage: SeedStage, gate: str, next_stage: SeedStage, enabled: bool
) -> None:
    machine = germinated(auto_forward=(gate,) if enabled else ())
    healthy(machine).require_state().stage = stage
    machine.require_state().epochs_in_stage = 10
    machine.record_contribution(1.0)
    if stage in (S.BLENDING, S.HOLDING):
        machine.alpha_controller = AlphaController(1.0)
    update = machine.step_epoch()
    assert update.ok
    if not enabled:
        assert update.records == () and machine.stage is stage
        return
    evaluation, transition = update.records
    assert isinstance(evaluation, GateEvaluation) and evaluation.result.gate.name == gate
    assert isinstance(transition, StageTransition) and transition.initiator == "auto"
    assert (transition.from_stage, transition.to_stage) == (stage, next_stage)


def test_a_failing_auto_gate_reports_its_evaluation_and_stays() -> None:
    machine = germinated(auto_forward=("G2",))
    machine.advance()
    update = machine.step_epoch()  # one epoch in TRAINING < G2's 10
    assert update.ok and machine.stage is SeedStage.TRAINING
    assert [type(r) for r in update.records] == [GateEvaluation]


@pytest.mark.parametrize(("embargo", "resetting"), [(5, 1), (0, 0), (2, 3)])
def test_prune_cooldown_counts_embargo_then_resetting_epochs(embargo: int, resetting: int) -> None:
    machine = germinated(embargo_epochs=embargo, resetting_epochs=resetting)
    machine.advance()
    assert machine.prune("governor", "rollback").transitions[0].reason == "rollback"
    stages = []
    while not machine.is_empty:
        machine.step_epoch()
        stages.append(machine.stage)
    assert stages == [S.EMBARGOED] * embargo + [S.RESETTING] * resetting + [S.DORMANT]
    assert machine.step_epoch().records == ()


def test_prune_rules() -> None:
    young = germinated(min_prune_age=5)
    for _ in range(4):
        young.step_epoch()
    assert not young.can_prune
    young.step_epoch()
    assert young.can_prune
    live = healthy(in_stage(S.BLENDING))
    live.alpha_controller = AlphaController(0.5)
    live.prune()
    state = live.require_state()
    assert live.alpha_controller is None and state.gradient_health is None and state.has_exploding is None
    for stage in (S.FOSSILIZED, S.PRUNED, S.EMBARGOED, S.RESETTING):
        with pytest.raises(LifecycleError, match=f"cannot prune a seed in {stage.name}"):
            in_stage(stage).prune()
    with pytest.raises(LifecycleError, match="has no seed"):
        lifecycle().prune()


def test_set_alpha_target_from_holding_returns_to_blending() -> None:
    machine = in_stage(S.HOLDING)
    machine.alpha_controller = AlphaController(1.0)
    update = machine.set_alpha_target(AlphaSchedule(0.5, 3, AlphaCurve.LINEAR))
    assert update.ok and machine.stage is SeedStage.BLENDING and machine.alpha_target == 0.5
    assert update.transitions[0].reason == "alpha retarget"
    with pytest.raises(LifecycleError, match="still ramping"):
        machine.set_alpha_target(AlphaSchedule(0.7, 3, AlphaCurve.LINEAR))


def test_metrics_are_ignored_while_empty_or_cooling() -> None:
    machine = germinated()
    machine.record_accuracy(60.0)
    machine.record_contribution(None)
    state = machine.require_state()
    assert (state.current_accuracy, state.counterfactual_contribution) == (60.0, None)
    machine.prune()
    machine.record_accuracy(10.0)
    assert state.current_accuracy == 60.0
    lifecycle().record_accuracy(1.0)  # empty: nothing to record
