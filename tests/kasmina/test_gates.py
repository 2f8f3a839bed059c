"""Every gate, pass and fail, with each failed check named (docs/pipeline.md §2 table)."""

import pytest

from esper.kasmina.alpha import AlphaController, AlphaSchedule
from esper.kasmina.gates import check_gate
from esper.kasmina.slot import DEFAULT_SCHEDULE
from esper.kasmina.state import SeedState
from esper.leyline.stages import AlphaAlgorithm, AlphaCurve, GateLevel, SeedStage

from .models import gates

PERMISSIVE = gates()
STRICT = gates(mode="strict")


def state(**fields: object) -> SeedState:
    s = SeedState(seed_id="seed0", slot_id="r0c0", blueprint="conv_light",
                  algorithm=AlphaAlgorithm.ADD, schedule=DEFAULT_SCHEDULE, param_count=10,
                  accuracy_at_germination=50.0)
    for name, value in fields.items():
        setattr(s, name, value)
    return s


def healthy_training(**fields: object) -> SeedState:
    base = dict(stage=SeedStage.TRAINING, epochs_in_stage=10, gradient_health=0.9,
                has_exploding=False, seed_gradient_norm_ratio=0.5, current_accuracy=51.0)
    return state(**{**base, **fields})


def holding_alpha(target: float = 1.0) -> AlphaController:
    controller = AlphaController(0.0)
    controller.retarget(AlphaSchedule(target, 0, AlphaCurve.LINEAR))
    return controller


def test_defaults_come_from_the_schema() -> None:
    assert PERMISSIVE.mode == "permissive"
    assert PERMISSIVE.G2.min_training_epochs == 10 and PERMISSIVE.G2.min_gradient_health == 0.7
    assert PERMISSIVE.G3.alpha_tolerance == 1e-6 and PERMISSIVE.G5.min_contribution == 1.0


def test_g0() -> None:
    ok = check_gate(GateLevel.G0, state(), None, PERMISSIVE)
    assert ok.passed and ok.checks_passed == ("seed_id_present", "blueprint_id_present")
    assert ok.target_stage is SeedStage.GERMINATED and ok.score == 1.0
    bad = check_gate(GateLevel.G0, state(seed_id="", blueprint=""), None, PERMISSIVE)
    assert not bad.passed and bad.checks_failed == ("seed_id_missing", "blueprint_id_missing")
    assert bad.score == 0.0 and bad.message.startswith("G0 failed: seed_id_missing")


def test_g1() -> None:
    assert check_gate(GateLevel.G1, state(stage=SeedStage.GERMINATED), None, PERMISSIVE).passed
    bad = check_gate(GateLevel.G1, state(stage=SeedStage.TRAINING), None, PERMISSIVE)
    assert bad.checks_failed == ("stage_not_germinated",) and "TRAINING" in bad.message


def test_g2_passes_when_healthy() -> None:
    result = check_gate(GateLevel.G2, healthy_training(), None, PERMISSIVE)
    assert result.passed
    assert result.checks_passed == ("epochs_in_stage", "gradient_health", "gradients_not_exploding")
    assert result.message == "G2 passed"


@pytest.mark.parametrize(
    "fields,failed",
    [
        (dict(epochs_in_stage=9), ("epochs_in_stage_below_min",)),
        (dict(gradient_health=None, has_exploding=None),
         ("gradient_health_not_measured", "gradient_exploding_not_measured")),
        (dict(gradient_health=0.69), ("gradient_health_below_min",)),
        (dict(has_exploding=True), ("gradient_exploding",)),
    ],
)
def test_g2_failures_are_named(fields: dict, failed: tuple[str, ...]) -> None:
    result = check_gate(GateLevel.G2, healthy_training(**fields), None, PERMISSIVE)
    assert not result.passed and result.checks_failed == failed
    assert 0.0 <= result.score < 1.0


def test_g2_strict_adds_improvement_and_gradient_ratio() -> None:
    no_gain = healthy_training(current_accuracy=50.4)
    assert not check_gate(GateLevel.G2, no_gain, None, PERMISSIVE).checks_failed
    passed = check_gate(GateLevel.G2, healthy_training(), None, STRICT)
    assert passed.passed and passed.checks_passed[-2:] == ("improvement", "gradient_ratio")
    cases = [
        (dict(current_accuracy=50.4), "improvement_below_min"),
        (dict(seed_gradient_norm_ratio=None), "gradient_ratio_not_measured"),
        (dict(seed_gradient_norm_ratio=0.09), "gradient_ratio_below_min"),
    ]
    for fields, failed in cases:
        assert check_gate(GateLevel.G2, healthy_training(**fields), None, STRICT).checks_failed == (failed,)


def test_g3() -> None:
    blending = state(stage=SeedStage.BLENDING, epochs_in_stage=3)
    ok = check_gate(GateLevel.G3, blending, holding_alpha(), PERMISSIVE)
    assert ok.passed and ok.checks_passed == ("alpha_at_target", "alpha_holding")
    ramping = AlphaController(0.0)
    ramping.retarget(AlphaSchedule(1.0, 5, AlphaCurve.LINEAR))
    ramping.tick()
    bad = check_gate(GateLevel.G3, blending, ramping, PERMISSIVE)
    assert bad.checks_failed == ("alpha_not_at_target", "alpha_not_holding")
    assert check_gate(GateLevel.G3, blending, None, PERMISSIVE).checks_failed == (
        "alpha_not_at_target", "alpha_not_holding")
    # a partial target (SET_ALPHA_TARGET 0.7) is "at target" once reached
    assert check_gate(GateLevel.G3, blending, holding_alpha(0.7), PERMISSIVE).passed
    strict = check_gate(GateLevel.G3, blending, holding_alpha(), STRICT)
    assert strict.checks_failed == ("epochs_in_stage_below_min",)
    assert check_gate(GateLevel.G3, state(stage=SeedStage.BLENDING, epochs_in_stage=10),
                      holding_alpha(), STRICT).passed


def test_g5() -> None:
    holding = dict(stage=SeedStage.HOLDING, gradient_health=1.0, has_exploding=False)
    ok = check_gate(GateLevel.G5, state(**holding, counterfactual_contribution=0.2), None, PERMISSIVE)
    assert ok.passed and ok.checks_passed == ("contribution_measured", "gradient_health",
                                              "gradients_not_exploding")
    assert check_gate(GateLevel.G5, state(**holding), None, PERMISSIVE).checks_failed == (
        "contribution_not_measured",)
    unhealthy = state(**{**holding, "has_exploding": True, "gradient_health": 0.2},
                      counterfactual_contribution=3.0)
    assert check_gate(GateLevel.G5, unhealthy, None, PERMISSIVE).checks_failed == (
        "gradient_health_below_min", "gradient_exploding")
    weak = state(**holding, counterfactual_contribution=0.2)
    assert check_gate(GateLevel.G5, weak, None, STRICT).checks_failed == ("contribution_below_min",)
    assert check_gate(GateLevel.G5, state(**holding), None, STRICT).checks_failed == (
        "contribution_not_measured", "contribution_below_min")
    assert check_gate(GateLevel.G5, state(**holding, counterfactual_contribution=1.0), None, STRICT).passed
