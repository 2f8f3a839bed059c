"""Fused validation: K alpha configurations in one pass equal K explicit evaluations."""

import copy

import pytest
import torch
from torch.nn import functional as F

from esper.kasmina.counterfactual import fused_validate
from esper.kasmina.host import MorphogeneticModel
from esper.leyline.stages import AlphaAlgorithm, SeedStage

from .models import tiny_batch, tiny_model, to_holding


def accuracy(model: MorphogeneticModel, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        return 100.0 * (model(x).argmax(1) == y).sum().item() / y.shape[0]


def three_slot_model() -> MorphogeneticModel:
    """r0c0 HOLDING (ADD), r0c1 BLENDING at alpha 0.6 (GATE), r0c2 TRAINING."""
    model = tiny_model(host={"n_blocks": 3, "base_channels": 4},
                       slots={"enabled": ["r0c0", "r0c1", "r0c2"]})
    model.germinate("r0c0", "conv_heavy", accuracy=0.0)
    to_holding(model.slot("r0c0"))
    model.germinate("r0c1", "conv_light", accuracy=0.0, algorithm=AlphaAlgorithm.GATE)
    to_holding(model.slot("r0c1"))
    model.slot("r0c1").alpha_controller.alpha = 0.6  # type: ignore[union-attr]
    model.germinate("r0c2", "depthwise", accuracy=0.0)
    model.slot("r0c2").advance()
    for p in model.parameters():  # random, large seed weights so alphas change predictions
        torch.nn.init.normal_(p, std=0.5)
    return model


def test_contributions_equal_explicit_evaluations() -> None:
    x, y = tiny_batch(n=200, seed=3)
    model = three_slot_model()
    result = fused_validate(model, x, y, batch_size=64)
    assert result.n_configs == 4 and result.n_samples == 200  # current, 2 ablations, no seed
    assert result.contributions["r0c2"] is None  # TRAINING: no counterfactual
    assert set(result.contributions) == {"r0c0", "r0c1", "r0c2"}
    base = accuracy(model, x, y)
    assert result.accuracy == pytest.approx(base)
    model.eval()
    with torch.no_grad():
        assert result.loss == pytest.approx(F.cross_entropy(model(x), y).item(), rel=1e-5)
    for sid in ("r0c0", "r0c1"):
        ablated = copy.deepcopy(model)
        ablated.slot(sid).alpha_controller.alpha = 0.0  # type: ignore[union-attr]
        explicit = accuracy(ablated, x, y)
        assert result.ablated_accuracy[sid] == pytest.approx(explicit)
        assert result.contributions[sid] == pytest.approx(base - explicit)
    assert result.contributions["r0c0"] != 0.0  # the setup is not vacuous


def test_fused_logits_match_separate_forwards() -> None:
    x, _ = tiny_batch(n=8)
    model = three_slot_model().eval()
    alphas = {"r0c0": torch.tensor([1.0, 0.0]).repeat_interleave(8)}
    with torch.no_grad():
        fused = model(x.repeat(2, 1, 1, 1), alphas).view(2, 8, -1)
        ablated = copy.deepcopy(model)
        ablated.slot("r0c0").alpha_controller.alpha = 0.0  # type: ignore[union-attr]
        assert torch.allclose(fused[0], model(x), atol=1e-5)
        assert torch.allclose(fused[1], ablated(x), atol=1e-5)


def test_validation_has_no_side_effects() -> None:
    x, y = tiny_batch(n=32)
    model = three_slot_model().train()
    before = copy.deepcopy(model.state_dict())
    states = {s.slot_id: copy.deepcopy(s.state) for s in model.seed_slots()}
    fused_validate(model, x, y, batch_size=10)
    assert model.training
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert {s.slot_id: s.state for s in model.seed_slots()} == states


def test_no_seeds_is_a_plain_validation() -> None:
    x, y = tiny_batch(n=20)
    model = tiny_model()
    result = fused_validate(model, x, y, batch_size=7)
    assert result.n_configs == 1 and result.contributions == {} and result.ablated_accuracy == {}
    assert result.accuracy == pytest.approx(accuracy(model, x, y))
    assert 0.0 <= result.accuracy <= 100.0


def test_fossilized_and_alpha_zero_seeds_are_not_measured() -> None:
    x, y = tiny_batch(n=20)
    model = tiny_model()
    model.germinate("r0c0", "norm", accuracy=0.0)
    slot = model.slot("r0c0")
    to_holding(slot)
    slot.record_contribution(5.0)
    assert slot.fossilize().ok
    model.germinate("r0c1", "norm", accuracy=0.0)
    result = fused_validate(model, x, y, batch_size=8)
    assert result.contributions == {"r0c1": None}
    assert result.n_configs == 2  # current (= committed: the TRAINING seed is off) and host


def fossil_and_live_model() -> MorphogeneticModel:
    """r0c0 FOSSILIZED (conv_heavy), r0c1 HOLDING (conv_light, GATE, alpha 0.6)."""
    model = three_slot_model()
    slot = model.slot("r0c0")
    slot.record_contribution(5.0)
    assert slot.fossilize().ok
    return model


def test_committed_accuracy_equals_an_evaluation_with_live_seeds_off() -> None:
    x, y = tiny_batch(n=200, seed=5)
    model = fossil_and_live_model()
    result = fused_validate(model, x, y, batch_size=64)
    committed = copy.deepcopy(model)
    committed.prune_live_seeds()  # the live seeds leave the forward; the fossil stays
    assert committed.slot("r0c0").stage is SeedStage.FOSSILIZED
    assert result.committed_accuracy == pytest.approx(accuracy(committed, x, y))
    host = copy.deepcopy(committed)
    host.slot("r0c0").alpha_controller.alpha = 0.0  # type: ignore[union-attr]
    assert result.host_accuracy == pytest.approx(accuracy(host, x, y))
    # not vacuous: the three models differ on this data
    assert len({result.accuracy, result.committed_accuracy, result.host_accuracy}) == 3
    # current, r0c1 ablated (= committed: the only live blended seed), host
    assert result.n_configs == 3


def test_no_seeds_needs_no_extra_configuration() -> None:
    x, y = tiny_batch(n=20)
    result = fused_validate(tiny_model(), x, y, batch_size=7)
    assert result.n_configs == 1
    assert result.committed_accuracy == result.host_accuracy == result.accuracy
