"""Slot forward: identity, straight-through, the three blends, gradient isolation."""

import copy

import pytest
import torch
from torch.nn import functional as F

from esper.kasmina.alpha import AlphaController
from esper.kasmina.host import MorphogeneticModel
from esper.leyline.stages import AlphaAlgorithm, SeedStage

from .models import tiny_batch, tiny_model, to_holding


def host_grads(model: MorphogeneticModel, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    return [p.grad.clone() for p in model.host_parameters()]  # type: ignore[union-attr]


def blending_model(
    algorithm: AlphaAlgorithm, alpha: float = 0.4, blueprint: str = "conv_light"
) -> MorphogeneticModel:
    model = tiny_model()
    slot = model.slot("r0c0")
    model.germinate("r0c0", blueprint, accuracy=0.0, algorithm=algorithm)
    slot.advance()
    state = slot.state
    assert state is not None
    state.epochs_in_stage, state.gradient_health, state.has_exploding = 10, 1.0, False
    assert slot.advance().ok and slot.stage is SeedStage.BLENDING
    slot.alpha_controller = AlphaController(alpha)
    return model


def test_empty_and_germinated_slots_are_identity() -> None:
    model = tiny_model()
    x, _ = tiny_batch()
    model.eval()
    expected = model.host(x)
    assert torch.equal(model(x), expected)
    model.germinate("r0c0", "conv_heavy", accuracy=0.0)
    assert torch.equal(model(x), expected)


def test_host_architecture() -> None:
    model = tiny_model(host={"n_blocks": 3, "base_channels": 8}, slots={"enabled": ["r0c0", "r0c2"]})
    assert model.host.channels == [8, 16, 32] and model.host.spatial_sizes == [8, 4, 2]
    # conv (k*k*in*out, no bias) + BN (2*out) per block, then the linear head
    expected = (9 * 1 * 8 + 16) + (9 * 8 * 16 + 32) + (9 * 16 * 32 + 64) + (32 * 10 + 10)
    assert model.host_param_count == expected
    assert model.slot("r0c2").probe_shape == (32, 2, 2)
    assert list(model.slots) == ["r0c0", "r0c2"]
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 10)


def test_straight_through_equals_host_and_trains_the_seed() -> None:
    x, y = tiny_batch()
    model = tiny_model()
    without_seed = copy.deepcopy(model)
    model.germinate("r0c1", "conv_light", accuracy=0.0)
    model.slot("r0c1").advance()
    assert model.slot("r0c1").stage is SeedStage.TRAINING and model.slot("r0c1").alpha == 0.0
    out = model(x)
    assert torch.equal(out, without_seed(x))
    F.cross_entropy(out, y).backward()
    grads = [p.grad for p in model.slot("r0c1").seed_parameters()]
    assert all(g is not None and g.abs().sum() > 0 for g in grads)


def test_training_seed_leaves_host_gradients_untouched() -> None:
    x, y = tiny_batch()
    model = tiny_model()
    without_seed = copy.deepcopy(model)
    model.germinate("r0c0", "conv_heavy", accuracy=0.0)
    model.slot("r0c0").advance()
    for with_seed, reference in zip(host_grads(model, x, y), host_grads(without_seed, x, y)):
        assert torch.equal(with_seed, reference)


@pytest.mark.parametrize("algorithm", list(AlphaAlgorithm))
def test_blending_seed_is_isolated_from_the_host(algorithm: AlphaAlgorithm) -> None:
    """Host gradients equal those of a run whose seed output is a constant (no seed path),
    and differ from a run where the seed reads the attached host activation."""
    x, y = tiny_batch()
    model = blending_model(algorithm)
    isolated = host_grads(model, x, y)
    slot = model.slot("r0c0")
    assert slot.seed is not None
    handles = [slot.seed.blueprint.register_forward_hook(lambda m, i, o: o.detach())]
    if slot.seed.gate is not None:
        handles.append(slot.seed.gate.register_forward_hook(lambda m, i, o: o.detach()))
    constant_seed = host_grads(model, x, y)
    for handle in handles:
        handle.remove()
    for a, b in zip(isolated, constant_seed):
        assert torch.allclose(a, b, atol=1e-6)
    slot._seed_input = lambda host: host  # type: ignore[method-assign]  # simulate a leak
    leaking = host_grads(model, x, y)
    assert any(not torch.allclose(a, b, atol=1e-6) for a, b in zip(leaking, constant_seed))


@pytest.mark.parametrize("algorithm", list(AlphaAlgorithm))
def test_isolation_check_counts_a_leak(algorithm: AlphaAlgorithm) -> None:
    x, y = tiny_batch()
    model = blending_model(algorithm)
    slot = model.slot("r0c0")
    for _ in range(2):
        model.arm_isolation_checks()
        host_grads(model, x, y)
        model.measure_gradients()
    assert slot.state is not None and slot.state.isolation_violations == 0
    slot._seed_input = lambda host: host  # type: ignore[method-assign]  # simulate a leak
    model.arm_isolation_checks()
    host_grads(model, x, y)
    model.measure_gradients()
    assert slot.state.isolation_violations == 1
    host_grads(model, x, y)  # not armed: not checked
    model.measure_gradients()
    assert slot.state.isolation_violations == 1


def test_training_seed_isolation_check_is_clean() -> None:
    x, y = tiny_batch()
    model = tiny_model()
    model.germinate("r0c0", "bottleneck", accuracy=0.0)
    model.slot("r0c0").advance()
    model.arm_isolation_checks()
    host_grads(model, x, y)
    model.measure_gradients()
    assert model.slot("r0c0").state.isolation_violations == 0  # type: ignore[union-attr]


@pytest.mark.parametrize("algorithm", list(AlphaAlgorithm))
def test_blend_formulas(algorithm: AlphaAlgorithm) -> None:
    model = blending_model(algorithm, alpha=0.3)
    slot = model.slot("r0c0")
    assert slot.seed is not None
    h = torch.randn(4, 4, 8, 8)
    with torch.no_grad():
        s = slot.seed.blueprint(h)
        expected = {
            AlphaAlgorithm.ADD: lambda: h + 0.3 * (s - h),
            AlphaAlgorithm.MULTIPLY: lambda: h * (1 + 0.3 * torch.tanh(s - h)),
            AlphaAlgorithm.GATE: lambda: h + 0.3 * slot.seed.gate(h) * (s - h),  # type: ignore[misc]
        }[algorithm]()
        assert torch.allclose(slot(h), expected, atol=1e-6)
        per_sample = torch.tensor([0.0, 0.3, 0.3, 1.0])
        out = slot(h, per_sample)
        assert torch.equal(out[0], h[0])  # alpha 0 is exactly the host
        assert torch.allclose(out[1:3], expected[1:3], atol=1e-6)


def test_gate_is_per_sample() -> None:
    model = blending_model(AlphaAlgorithm.GATE)
    gate = model.slot("r0c0").seed.gate  # type: ignore[union-attr]
    torch.nn.init.normal_(gate.proj.weight)
    g = gate(torch.randn(5, 4, 8, 8))
    assert g.shape == (5, 1, 1, 1) and len(set(g.flatten().tolist())) == 5


def test_holding_seed_is_not_isolated() -> None:
    x, y = tiny_batch()
    model = tiny_model()
    model.germinate("r0c0", "conv_light", accuracy=0.0)
    to_holding(model.slot("r0c0"))
    assert not model.slot("r0c0").is_isolated
    attached = host_grads(model, x, y)
    seed = model.slot("r0c0").seed
    assert seed is not None
    handle = seed.blueprint.register_forward_hook(lambda m, i, o: o.detach())
    detached = host_grads(model, x, y)
    handle.remove()
    assert any(not torch.allclose(a, b) for a, b in zip(attached, detached))


def test_seed_step_clips_the_seed_separately() -> None:
    x, y = tiny_batch()
    model = tiny_model()
    model.germinate("r0c0", "conv_light", accuracy=0.0)
    slot = model.slot("r0c0")
    slot.advance()
    (1e4 * F.cross_entropy(model(x), y)).backward()
    before = [p.detach().clone() for p in slot.seed_parameters()]
    slot.seed_step()
    grads = [p.grad for p in slot.seed_parameters()]
    total = torch.linalg.vector_norm(torch.cat([g.flatten() for g in grads]))  # type: ignore[union-attr]
    assert total.item() == pytest.approx(slot.grad_clip, rel=1e-4)
    moved = [(p - b).flatten() for p, b in zip(slot.seed_parameters(), before)]
    step = torch.linalg.vector_norm(torch.cat(moved))
    assert step.item() == pytest.approx(0.01 * slot.grad_clip, rel=1e-3)  # lr * clipped norm
