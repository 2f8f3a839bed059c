"""Seed-gradient measurement: one vectorised pass after backward, before the step."""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn
from torch.nn import functional as F

from esper.kasmina.gradients import gradient_health, measure_gradient_groups

from .models import tiny_batch, tiny_model


def params_with_grads(norms: list[float]) -> list[nn.Parameter]:
    params = []
    for norm in norms:
        p = nn.Parameter(torch.zeros(4))
        p.grad = torch.full((4,), norm / 2.0)  # L2 norm of 4 equal entries = 2 * entry
        params.append(p)
    return params


def test_stats_of_a_group() -> None:
    group = params_with_grads([1e-9, 0.5, 3.0, 500.0])
    (stats,) = measure_gradient_groups([group])
    assert stats.n_tensors == 4 and stats.n_vanishing == 1 and stats.n_exploding == 1
    assert stats.has_vanishing and stats.has_exploding
    assert stats.gradient_norm == pytest.approx(math.sqrt(1e-18 + 0.25 + 9 + 250000), rel=1e-5)
    assert stats.gradient_health == pytest.approx(1 - 0.5 * 0.25 - 0.8 * 0.25)


def test_non_finite_gradients_explode() -> None:
    group = params_with_grads([1.0, 1.0])
    group[0].grad[0] = float("nan")  # type: ignore[index]
    (stats,) = measure_gradient_groups([group])
    assert stats.n_exploding == 1 and math.isnan(stats.gradient_norm)


def test_groups_are_measured_independently_and_missing_grads_skipped() -> None:
    no_grad = nn.Parameter(torch.zeros(3))
    groups = [params_with_grads([2.0]), params_with_grads([3.0, 4.0]) + [no_grad], []]
    a, b, empty = measure_gradient_groups(groups)
    assert a.gradient_norm == pytest.approx(2.0) and a.n_tensors == 1
    assert b.gradient_norm == pytest.approx(5.0) and b.n_tensors == 2
    assert empty.n_tensors == 0 and empty.gradient_health == 1.0 and not empty.has_vanishing


@given(st.integers(1, 50), st.integers(0, 50), st.integers(0, 50))
def test_health_is_clamped_to_unit_interval(n: int, vanishing: int, exploding: int) -> None:
    vanishing, exploding = min(vanishing, n), min(exploding, n - min(vanishing, n))
    health = gradient_health(n, vanishing, exploding)
    assert 0.0 <= health <= 1.0
    assert health == pytest.approx(max(0.0, 1 - 0.5 * vanishing / n - 0.8 * exploding / n))


def test_model_measurement_records_seed_state_and_ratio() -> None:
    x, y = tiny_batch()
    model = tiny_model()
    model.germinate("r0c0", "conv_light", accuracy=0.0)
    model.germinate("r0c1", "norm", accuracy=0.0)  # stays GERMINATED: not in forward
    model.slot("r0c0").advance()
    state = model.slot("r0c0").state
    assert state is not None and state.gradient_health is None and state.seed_gradient_norm_ratio is None
    F.cross_entropy(model(x), y).backward()
    stats = model.measure_gradients()
    assert set(stats) == {"r0c0"}
    seed_norm = torch.linalg.vector_norm(torch.stack(
        [p.grad.norm() for p in model.slot("r0c0").seed_parameters()]))  # type: ignore[union-attr]
    host_grads = [p.grad.norm() for p in model.host_parameters()]  # type: ignore[union-attr]
    host_norm = torch.linalg.vector_norm(torch.stack(host_grads))
    assert stats["r0c0"].gradient_norm == pytest.approx(seed_norm.item(), rel=1e-5)
    assert state.gradient_norm == stats["r0c0"].gradient_norm
    assert state.seed_gradient_norm_ratio == pytest.approx((seed_norm / host_norm).item(), rel=1e-5)
    assert state.gradient_health == 1.0 and state.has_vanishing is False and state.has_exploding is False
    assert model.slot("r0c1").state.gradient_health is None  # type: ignore[union-attr]


def test_the_ratio_is_this_measurements_nan_when_the_host_gradient_is_nan() -> None:
    """A NaN host gradient makes the seed/host ratio NaN (measured, not finite), not the finite
    ratio of the previous measurement; a zero host norm makes it None (0/0 is not measured)."""
    x, y = tiny_batch()
    model = tiny_model()
    model.germinate("r0c0", "conv_light", accuracy=0.0)
    model.slot("r0c0").advance()  # TRAINING: in the forward pass
    state = model.slot("r0c0").state
    assert state is not None
    F.cross_entropy(model(x), y).backward()
    model.measure_gradients()
    ratio = state.seed_gradient_norm_ratio
    assert ratio is not None and math.isfinite(ratio)

    with torch.no_grad():
        model.host.head.weight[0, 0] = float("nan")  # the loss, and every gradient, turn NaN
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    model.measure_gradients()
    assert math.isnan(state.gradient_norm) and state.has_exploding  # type: ignore[arg-type]
    assert state.seed_gradient_norm_ratio is not None and math.isnan(state.seed_gradient_norm_ratio)

    model.zero_grad(set_to_none=True)
    with torch.no_grad():
        model.host.head.weight[0, 0] = 0.0
    F.cross_entropy(model(x), y).backward()
    for p in model.host_parameters():
        p.grad.zero_()  # type: ignore[union-attr]
    model.measure_gradients()
    assert state.gradient_norm is not None and state.gradient_norm > 0
    assert state.seed_gradient_norm_ratio is None


def test_a_seed_without_any_gradient_is_not_measured() -> None:
    """The noop seed has no parameter, hence no gradient: its gradient fields stay None (an
    empty group's norm 0.0 and health 1.0 would read as a measured, perfectly healthy seed)."""
    x, y = tiny_batch()
    model = tiny_model()
    model.germinate("r0c0", "noop", accuracy=0.0)
    model.germinate("r0c1", "norm", accuracy=0.0)
    model.slot("r0c0").advance()
    model.slot("r0c1").advance()
    F.cross_entropy(model(x), y).backward()
    stats = model.measure_gradients()
    assert set(stats) == {"r0c1"}
    noop, norm = model.slot("r0c0").state, model.slot("r0c1").state
    assert noop is not None and norm is not None
    assert (noop.gradient_norm, noop.gradient_health, noop.has_vanishing, noop.has_exploding,
            noop.seed_gradient_norm_ratio) == (None, None, None, None, None)
    assert norm.gradient_health is not None and norm.seed_gradient_norm_ratio is not None
