"""SeedSlot lifecycle: valid and invalid transitions, cooldown, auto-forward, alpha retarget."""

import dataclasses

import pytest
import torch
from torch import nn

from esper.kasmina import blueprints
from esper.kasmina.alpha import AlphaSchedule
from esper.kasmina.host import MorphogeneticModel
from esper.kasmina.errors import BlueprintError, LifecycleError, SlotConfigError
from esper.kasmina.state import GateEvaluation, StageTransition
from esper.leyline.stages import (
    ACTIVE_STAGES,
    FAILURE_STAGES,
    VALID_TRANSITIONS,
    AlphaAlgorithm,
    AlphaCurve,
    GateLevel,
    SeedStage,
    is_valid_transition,
)

from .models import spec, tiny_model, to_holding


def test_stage_values_are_the_contract() -> None:
    assert {s.name: int(s) for s in SeedStage} == {
        "UNKNOWN": 0, "DORMANT": 1, "GERMINATED": 2, "TRAINING": 3, "BLENDING": 4, "HOLDING": 6,
        "FOSSILIZED": 7, "PRUNED": 8, "EMBARGOED": 9, "RESETTING": 10}
    assert [int(g) for g in GateLevel] == [0, 1, 2, 3, 5]
    assert ACTIVE_STAGES == {SeedStage.TRAINING, SeedStage.BLENDING, SeedStage.HOLDING,
                             SeedStage.FOSSILIZED}
    assert FAILURE_STAGES == {SeedStage.PRUNED, SeedStage.EMBARGOED, SeedStage.RESETTING}
    assert VALID_TRANSITIONS[SeedStage.FOSSILIZED] == frozenset()
    assert is_valid_transition(SeedStage.HOLDING, SeedStage.BLENDING)
    assert not is_valid_transition(SeedStage.TRAINING, SeedStage.HOLDING)


def test_full_lifecycle_to_fossilized() -> None:
    model = tiny_model()
    slot = model.slot("r0c0")
    update = model.germinate("r0c0", "conv_light", accuracy=50.0)
    assert update.ok and slot.stage is SeedStage.GERMINATED and model.seeds_germinated == 1
    assert isinstance(update.records[0], GateEvaluation) and update.records[0].result.gate is GateLevel.G0
    transition = update.records[1]
    assert isinstance(transition, StageTransition)
    assert (transition.from_stage, transition.to_stage) == (SeedStage.DORMANT, SeedStage.GERMINATED)
    assert slot.state is not None and slot.state.seed_id == "seed0"
    assert slot.state.param_count == 9 * 16 + 8 and slot.optimizer is not None
    to_holding(slot)
    assert slot.stage is SeedStage.HOLDING and slot.alpha == 1.0
    failed = slot.fossilize()
    assert not failed.ok
    assert failed.gate_evaluations[0].result.checks_failed == ("contribution_not_measured",)
    slot.record_contribution(2.0)
    done = slot.fossilize()
    assert done.ok and slot.stage is SeedStage.FOSSILIZED
    assert done.transitions[0].reason == "G5 passed"
    with pytest.raises(LifecycleError, match="cannot prune a seed in FOSSILIZED"):
        slot.prune()


def test_failed_gate_keeps_the_stage() -> None:
    model = tiny_model()
    slot = model.slot("r0c0")
    model.germinate("r0c0", "norm", accuracy=10.0)
    slot.advance()
    update = slot.advance()  # G2: only 0 epochs in TRAINING, gradients never measured
    assert not update.ok and slot.stage is SeedStage.TRAINING
    assert update.gate_evaluations[0].result.checks_failed == (
        "epochs_in_stage_below_min", "gradient_health_not_measured", "gradient_exploding_not_measured")
    assert update.transitions == ()


@pytest.mark.parametrize(
    "operation,message",
    [
        (lambda s: s.advance(), "has no seed"),
        (lambda s: s.fossilize(), "has no seed"),
        (lambda s: s.prune(), "has no seed"),
    ],
)
def test_operations_on_an_empty_slot_raise(operation, message: str) -> None:
    with pytest.raises(LifecycleError, match=message):
        operation(tiny_model().slot("r0c0"))


def test_invalid_operations_raise() -> None:
    model = tiny_model()
    slot = model.slot("r0c0")
    model.germinate("r0c0", "norm", accuracy=10.0)
    with pytest.raises(LifecycleError, match="not empty"):
        slot.germinate("norm", "x", accuracy=0.0)
    with pytest.raises(LifecycleError, match="cannot fossilize from GERMINATED"):
        slot.fossilize()
    with pytest.raises(LifecycleError, match="cannot set alpha target in GERMINATED"):
        slot.set_alpha_target(AlphaSchedule(0.5, 3, AlphaCurve.LINEAR))
    with pytest.raises(LifecycleError, match="invalid transition GERMINATED -> HOLDING"):
        slot._transition(SeedStage.HOLDING, "policy", "test")
    to_holding(slot)
    with pytest.raises(LifecycleError, match="cannot advance from HOLDING"):
        slot.advance()


def test_prune_cooldown_takes_seven_epochs() -> None:
    model = tiny_model()
    slot = model.slot("r0c1")
    model.germinate("r0c1", "conv_small", accuracy=10.0)
    slot.advance()
    update = slot.prune(reason="bad seed")
    assert update.transitions[0].to_stage is SeedStage.PRUNED and slot.seed is None
    assert slot.optimizer is None
    with pytest.raises(LifecycleError, match="not empty"):
        model.germinate("r0c1", "norm", accuracy=0.0)
    with pytest.raises(LifecycleError, match="cannot prune a seed in PRUNED"):
        slot.prune()
    stages = []
    for _ in range(7):
        stages.append([t.to_stage for t in slot.step_epoch().transitions])
    assert stages == [[SeedStage.EMBARGOED], [], [], [], [], [SeedStage.RESETTING], [SeedStage.DORMANT]]
    assert slot.is_empty and slot.stage is SeedStage.DORMANT
    assert model.germinate("r0c1", "norm", accuracy=0.0).ok


def test_zero_cooldown_chains_within_one_epoch() -> None:
    model = tiny_model(slots={"enabled": ["r0c0"], "embargo_epochs": 0, "resetting_epochs": 0})
    slot = model.slot("r0c0")
    model.germinate("r0c0", "norm", accuracy=0.0)
    slot.prune()
    assert [t.to_stage for t in slot.step_epoch().transitions] == [
        SeedStage.EMBARGOED, SeedStage.RESETTING, SeedStage.DORMANT]


def test_auto_forward_runs_the_configured_gates_only() -> None:
    model = tiny_model(gates={"auto_forward": ["G1", "G3"]})
    slot = model.slot("r0c0")
    model.germinate("r0c0", "norm", accuracy=10.0,
                    schedule=AlphaSchedule(1.0, 3, AlphaCurve.COSINE))
    update = slot.step_epoch()
    assert [t.initiator for t in update.transitions] == ["auto"]
    assert slot.stage is SeedStage.TRAINING
    assert slot.step_epoch().records == ()  # G2 is not auto: nothing checked
    state = slot.state
    assert state is not None
    state.gradient_health, state.has_exploding, state.epochs_in_stage = 1.0, False, 10
    assert slot.advance().ok and slot.stage is SeedStage.BLENDING
    failed = [slot.step_epoch(), slot.step_epoch()]
    assert all(not u.transitions and u.gate_evaluations[0].result.gate is GateLevel.G3 for u in failed)
    last = slot.step_epoch()  # third tick of a tempo-3 ramp: alpha snaps to 1, G3 passes
    assert slot.alpha == 1.0 and last.transitions[0].to_stage is SeedStage.HOLDING
    assert slot.stage is SeedStage.HOLDING


def test_seed_metrics() -> None:
    model = tiny_model()
    slot = model.slot("r0c0")
    model.germinate("r0c0", "norm", accuracy=40.0)
    slot.advance()
    state = slot.state
    assert state is not None
    slot.record_accuracy(45.0)
    slot.record_accuracy(43.0)
    assert (state.current_accuracy, state.best_accuracy, state.total_improvement) == (43.0, 45.0, 3.0)
    assert state.improvement_since_stage_start == 3.0  # stage start was at 40
    slot.step_epoch()
    slot.step_epoch()
    assert (state.epochs_total, state.epochs_in_stage) == (2, 2)
    slot.record_contribution(None)
    assert state.counterfactual_contribution is None and state.contribution_velocity is None
    slot.record_contribution(1.0)
    assert state.contribution_velocity is None  # one measurement: no velocity yet
    slot.record_contribution(3.0)
    assert state.contribution_velocity == pytest.approx(0.3 * 2.0)
    slot.record_contribution(2.0)
    assert state.contribution_velocity == pytest.approx(0.7 * 0.6 + 0.3 * -1.0)


def test_set_alpha_target_from_holding_reblends() -> None:
    model = tiny_model()
    slot = model.slot("r0c0")
    model.germinate("r0c0", "norm", accuracy=0.0)
    to_holding(slot)
    assert (slot.alpha_target, slot.alpha_holding) == (1.0, True)
    update = slot.set_alpha_target(AlphaSchedule(0.5, 2, AlphaCurve.LINEAR))
    assert (slot.alpha_target, slot.alpha_holding) == (0.5, False)
    assert [(t.from_stage, t.to_stage) for t in update.transitions] == [
        (SeedStage.HOLDING, SeedStage.BLENDING)]
    with pytest.raises(LifecycleError, match="still ramping"):
        slot.set_alpha_target(AlphaSchedule(0.7, 2, AlphaCurve.LINEAR))
    slot.step_epoch()
    slot.step_epoch()
    assert slot.alpha == 0.5 and slot.advance().ok and slot.stage is SeedStage.HOLDING
    assert (slot.alpha_target, slot.alpha_holding) == (0.5, True)
    same = slot.set_alpha_target(AlphaSchedule(0.5, 3, AlphaCurve.LINEAR))
    assert same.ok and same.records == () and slot.stage is SeedStage.HOLDING
    assert slot.alpha_controller is not None and slot.alpha_controller.is_holding
    with pytest.raises(LifecycleError, match=r"\(0, 1\]"):
        slot.set_alpha_target(AlphaSchedule(1.5, 2, AlphaCurve.LINEAR))


def test_seed_limit_and_default_ids() -> None:
    model = tiny_model(slots={"enabled": ["r0c0", "r0c1"], "max_seeds": 1})
    model.germinate("r0c0", "norm", accuracy=0.0, seed_id="env3-a")
    assert model.slot("r0c0").state.seed_id == "env3-a"  # type: ignore[union-attr]
    with pytest.raises(LifecycleError, match="seed limit reached"):
        model.germinate("r0c1", "norm", accuracy=0.0)


def test_germination_shape_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(blueprints.BLUEPRINTS, "shrink", lambda c: nn.MaxPool2d(2))  # type: ignore[index]
    slot = tiny_model().slot("r0c1")
    with pytest.raises(BlueprintError, match=r"'shrink' maps \(2, 8, 4, 4\) to \(2, 8, 2, 2\)"):
        slot.germinate("shrink", "s", accuracy=0.0)
    assert slot.is_empty


def test_g0_failure_leaves_the_slot_empty() -> None:
    slot = tiny_model().slot("r0c0")
    update = slot.germinate("norm", "", accuracy=0.0)
    assert not update.ok and slot.is_empty and slot.seed is None
    assert update.gate_evaluations[0].result.checks_failed == ("seed_id_missing",)


def test_gate_algorithm_adds_a_gate_to_the_seed() -> None:
    slot = tiny_model().slot("r0c0")
    slot.germinate("noop", "s", accuracy=0.0, algorithm=AlphaAlgorithm.GATE)
    assert slot.state is not None and slot.state.param_count == 4 + 1  # Linear(C, 1)
    noop = tiny_model().slot("r0c0")
    noop.germinate("noop", "s", accuracy=0.0)
    assert noop.optimizer is None and noop.seed_param_count == 0


def test_slot_config_must_fit_the_host() -> None:
    """The spec loader rejects this too; the model checks it for configs built in code."""
    s = spec(host={"n_blocks": 2}, slots={"enabled": ["r0c0"]})
    slots = dataclasses.replace(s.slots, enabled=("r0c2",))
    with pytest.raises(SlotConfigError, match="slot r0c2 needs host block 2, but the host has 2 blocks"):
        MorphogeneticModel(s.host, slots, s.gates, image_shape=(1, 8, 8), num_classes=10)


def test_can_prune_respects_min_age() -> None:
    model = tiny_model()
    slot = model.slot("r0c0")
    model.germinate("r0c0", "norm", accuracy=0.0)
    for _ in range(4):
        slot.step_epoch()
    assert not slot.can_prune
    slot.step_epoch()
    assert slot.can_prune


@pytest.mark.parametrize("algorithm", list(AlphaAlgorithm))
def test_seeds_germinated_after_model_to_follow_its_dtype(algorithm) -> None:
    """Before, a seed germinated after model.to(float64) stayed float32 (only the device was
    followed) and a blended forward mixed dtypes."""
    model = tiny_model().to(torch.float64)
    model.germinate("r0c0", "conv_light", accuracy=0.0, algorithm=algorithm)
    seed = model.slot("r0c0").seed
    assert {p.dtype for p in seed.parameters()} == {torch.float64}
    assert all(p.device == model.host.head.weight.device for p in seed.parameters())
    model.slot("r0c0").advance()  # TRAINING: the seed runs in the forward (straight-through)
    x = torch.randn(2, 1, 8, 8, dtype=torch.float64)
    assert model(x).dtype == torch.float64
