import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from esper.kasmina.alpha import AlphaController, AlphaSchedule, curve_value
from esper.leyline.stages import AlphaCurve, BlendTempo, SigmoidSteepness

CURVES = [
    (AlphaCurve.LINEAR, SigmoidSteepness.STANDARD),
    (AlphaCurve.COSINE, SigmoidSteepness.STANDARD),
    (AlphaCurve.SIGMOID, SigmoidSteepness.GENTLE),
    (AlphaCurve.SIGMOID, SigmoidSteepness.STANDARD),
    (AlphaCurve.SIGMOID, SigmoidSteepness.SHARP),
]


def test_enum_values_are_the_contract() -> None:
    assert [int(t) for t in BlendTempo] == [3, 5, 8]
    assert [int(s) for s in SigmoidSteepness] == [6, 12, 24]


@pytest.mark.parametrize("curve,steepness", CURVES)
def test_curve_endpoints(curve: AlphaCurve, steepness: int) -> None:
    assert curve_value(curve, 0.0, steepness) == pytest.approx(0.0, abs=1e-12)
    assert curve_value(curve, 1.0, steepness) == pytest.approx(1.0, abs=1e-12)
    assert curve_value(curve, 0.5, steepness) == pytest.approx(0.5, abs=1e-12)  # all symmetric


def test_cosine_formula() -> None:
    assert curve_value(AlphaCurve.COSINE, 0.25) == pytest.approx(0.5 * (1 - math.cos(math.pi / 4)))


def test_steeper_sigmoid_is_flatter_at_the_start() -> None:
    values = [curve_value(AlphaCurve.SIGMOID, 0.2, k) for k in SigmoidSteepness]
    assert values[0] > values[1] > values[2]


@given(
    st.sampled_from(CURVES),
    st.floats(0.0, 1.0),
    st.floats(0.0, 1.0),
)
def test_curves_are_monotonic_in_unit_interval(curve_steepness, t1: float, t2: float) -> None:
    curve, steepness = curve_steepness
    lo, hi = sorted((t1, t2))
    v_lo, v_hi = curve_value(curve, lo, steepness), curve_value(curve, hi, steepness)
    assert 0.0 <= v_lo <= v_hi + 1e-12 <= 1.0 + 1e-12


@given(
    st.sampled_from(CURVES),
    st.sampled_from(list(BlendTempo)),
    st.sampled_from([0.5, 0.7, 1.0]),
)
def test_ramp_is_monotonic_and_snaps_on_the_last_tick(curve_steepness, tempo: int, target: float) -> None:
    curve, steepness = curve_steepness
    controller = AlphaController(0.0)
    controller.retarget(AlphaSchedule(target, tempo, curve, steepness))
    values = [controller.alpha]
    for tick in range(1, tempo + 1):
        assert not controller.is_holding
        values.append(controller.tick())
    assert values == sorted(values)
    assert values[-1] == target  # exact, not approximate
    assert controller.is_holding and controller.progress == 1.0
    assert controller.tick() == target  # holding stays put


def test_ramp_down_and_instant_retarget() -> None:
    controller = AlphaController(0.0)
    controller.retarget(AlphaSchedule(1.0, 0, AlphaCurve.LINEAR))
    assert controller.alpha == 1.0 and controller.is_holding
    controller.retarget(AlphaSchedule(0.5, 2, AlphaCurve.LINEAR))
    assert controller.tick() == pytest.approx(0.75)
    assert controller.tick() == 0.5 and controller.is_holding
