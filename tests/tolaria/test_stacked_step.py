"""`training.batch_envs`: the stacked step of several envs equals each env's own `run_epoch`
up to float rounding (real training on digits, seeds in varied stages)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch

from esper.experiment import spec_from_dict
from esper.kasmina.alpha import AlphaController
from esper.kasmina.counterfactual import distinct_configurations
from esper.kasmina.host import MorphogeneticModel, conv_multiply_adds
from esper.kasmina.optim import Optimizer
from esper.kasmina.slot import SeedSlot
from esper.kasmina.stacked import StackedModels
from esper.leyline.stages import AlphaAlgorithm, SeedStage
from esper.tolaria.host_step import EpochResult, build_host_optimizer, run_epoch
from esper.tolaria.stacked_step import (AUTO_MAX_MULTIPLY_ADDS, can_stack, run_epoch_stacked,
                                        stacks_envs, validate_stacked)

from .setup import Env, tiny_env

ENVS = 4


def _envs(env_data: str, **task: Any) -> tuple[Env, list[MorphogeneticModel], list[Optimizer]]:
    """Four envs' models of one spec, each from its own torch seed: env 0 without a seed, env 1
    with a TRAINING seed, env 2 with a GATE seed blending at alpha 0.6 and an ADD seed at 0.3,
    env 3 with one ADD seed at 0.5. Their fused validations have 1, 1, 4 and 2 alpha
    configurations: env 3 is padded to 4 rows (env 0 and 1 have no alpha to override)."""
    base = tiny_env(task={"max_train": 240, "max_val": 120, "batch_size": 32,
                          "env_data": env_data, **task}, training={"envs": ENVS})
    models, optimizers = [], []
    for i in range(ENVS):
        torch.manual_seed(10 + i)
        model = MorphogeneticModel(base.spec.host, base.spec.slots, base.spec.gates,
                                   image_shape=base.data.image_shape,
                                   num_classes=base.data.num_classes)
        models.append(model)
        optimizers.append(build_host_optimizer(model, base.spec.host))
    models[1].germinate("r0c1", "conv_light", accuracy=0.0)
    models[1].slot("r0c1")._transition(SeedStage.TRAINING, "policy", "t")
    blended = models[2]
    blended.germinate("r0c0", "attention", accuracy=0.0, algorithm=AlphaAlgorithm.GATE)
    gate = blended.slot("r0c0")
    gate._transition(SeedStage.TRAINING, "policy", "t")
    gate._transition(SeedStage.BLENDING, "policy", "t")
    gate.lifecycle.alpha_controller = AlphaController(0.6)
    for _ in range(3):
        gate.step_epoch()
    blended.germinate("r0c1", "norm", accuracy=0.0)
    add = blended.slot("r0c1")
    add._transition(SeedStage.TRAINING, "policy", "t")
    add._transition(SeedStage.BLENDING, "policy", "t")
    add.lifecycle.alpha_controller = AlphaController(0.3)
    assert [(s.stage, s.alpha) for s in blended.seed_slots()] == [
        (SeedStage.BLENDING, pytest.approx(0.6)), (SeedStage.BLENDING, pytest.approx(0.3))]
    models[3].germinate("r0c1", "conv_light", accuracy=0.0)
    single = models[3].slot("r0c1")
    single._transition(SeedStage.TRAINING, "policy", "t")
    single._transition(SeedStage.BLENDING, "policy", "t")
    single.lifecycle.alpha_controller = AlphaController(0.5)
    assert [distinct_configurations(m) for m in models] == [1, 1, 4, 2]
    return base, models, optimizers


def _assert_results_equal(own: EpochResult, stacked: EpochResult) -> None:
    assert stacked.train_loss == pytest.approx(own.train_loss, abs=1e-4)
    assert stacked.val_loss == pytest.approx(own.val_loss, abs=1e-4)
    assert stacked.train_accuracy == pytest.approx(own.train_accuracy, abs=1e-4)
    assert stacked.val_accuracy == pytest.approx(own.val_accuracy, abs=1e-4)
    assert stacked.committed_accuracy == pytest.approx(own.committed_accuracy, abs=1e-4)
    assert stacked.host_accuracy == pytest.approx(own.host_accuracy, abs=1e-4)
    assert stacked.contributions.keys() == own.contributions.keys()
    for sid, value in own.contributions.items():
        expected = None if value is None else pytest.approx(value, abs=1e-4)
        assert stacked.contributions[sid] == expected
    assert stacked.ablated_accuracy == pytest.approx(own.ablated_accuracy, abs=1e-4)
    assert stacked.gradients.keys() == own.gradients.keys()
    for sid, stats in own.gradients.items():
        other = stacked.gradients[sid]
        assert other.gradient_norm == pytest.approx(stats.gradient_norm, rel=1e-4, abs=1e-7)
        assert (other.n_tensors, other.n_vanishing, other.n_exploding) == (
            stats.n_tensors, stats.n_vanishing, stats.n_exploding)
        assert other.gradient_health == pytest.approx(stats.gradient_health, abs=1e-6)


def _assert_states_equal(own: MorphogeneticModel, stacked: MorphogeneticModel,
                         own_opt: Optimizer, stacked_opt: Optimizer) -> None:
    a, b = own.state_dict(), stacked.state_dict()
    assert a.keys() == b.keys()
    for name, tensor in a.items():
        if tensor.is_floating_point():
            torch.testing.assert_close(b[name], tensor, atol=1e-5, rtol=1e-4, msg=name)
        else:  # BatchNorm's num_batches_tracked
            assert torch.equal(b[name], tensor), name
    own_state, stacked_state = own_opt.state_dict()["state"], stacked_opt.state_dict()["state"]
    assert own_state.keys() == stacked_state.keys() and own_state  # momentum is kept
    for index, values in own_state.items():
        torch.testing.assert_close(stacked_state[index]["momentum_buffer"],
                                   values["momentum_buffer"], atol=1e-5, rtol=1e-4)
    for own_slot, stacked_slot in zip(own.seed_slots(), stacked.seed_slots()):
        assert (own_slot.state is None) == (stacked_slot.state is None)
        if own_slot.state is not None and stacked_slot.state is not None:
            assert stacked_slot.state.isolation_violations == own_slot.state.isolation_violations


@pytest.mark.parametrize("env_data", ["full", "split"])
def test_stacked_epochs_equal_each_envs_own_epochs(env_data: str, monkeypatch) -> None:
    """Two stacked epochs give every env the results, parameters, BatchNorm statistics,
    optimiser momentum and isolation counts of its own `run_epoch`, and watch the same
    isolated seeds for gradient leaks on the same (measured) batches."""
    watched: list[str] = []
    watch = SeedSlot._watch_isolation

    def counting(slot: SeedSlot, *args: Any) -> None:
        watched.append(slot.slot_id)
        watch(slot, *args)

    monkeypatch.setattr(SeedSlot, "_watch_isolation", counting)
    base, models, optimizers = _envs(env_data)
    own_models, own_optimizers = [], []
    for model, optimizer in zip(models, optimizers):
        model_copy = copy.deepcopy(model)
        own_models.append(model_copy)
        optimizer_copy = build_host_optimizer(model_copy, base.spec.host)
        optimizer_copy.load_state_dict(copy.deepcopy(optimizer.state_dict()))
        own_optimizers.append(optimizer_copy)
    stack = StackedModels(models)
    clip = base.spec.host.grad_clip
    assert can_stack(base.schedule)
    for epoch in (1, 2):
        watched.clear()
        own = [run_epoch(m, o, base.data, base.schedule, epoch, e, clip)
               for e, (m, o) in enumerate(zip(own_models, own_optimizers))]
        own_watched = sorted(watched)
        watched.clear()
        stacked = run_epoch_stacked(stack, optimizers, base.data, base.schedule, epoch, clip,
                                    env_ids=list(range(ENVS)), measured=[True] * ENVS)
        assert own_watched and sorted(watched) == own_watched
        assert len(stacked) == ENVS
        for own_result, stacked_result in zip(own, stacked):
            _assert_results_equal(own_result, stacked_result)
        assert own[0].gradients == {} and set(own[2].gradients) == {"r0c0", "r0c1"}
    for own_model, model, own_opt, opt in zip(own_models, models, own_optimizers, optimizers):
        _assert_states_equal(own_model, model, own_opt, opt)
    steps = sum(len(base.schedule.train_batches(epoch, 0)) for epoch in (1, 2))
    assert all(int(m.host.blocks[0].norm.num_batches_tracked) == steps for m in models)


def test_unmeasured_models_get_no_gradient_stats() -> None:
    """`measured` picks the models whose last batch is measured: the others report none."""
    base, models, optimizers = _envs("full")
    results = run_epoch_stacked(StackedModels(models), optimizers, base.data, base.schedule, 1,
                                base.spec.host.grad_clip, env_ids=[0, 1, 2, 3],
                                measured=[True, False, True, True])
    assert results[1].gradients == {}
    assert set(results[2].gradients) == {"r0c0", "r0c1"}


def test_stacked_validation_leaves_the_models_in_their_mode() -> None:
    """The stacked validation switches to eval and back: after a stacked epoch every module is
    training again; a stack validated in eval mode stays in eval mode."""
    base, models, optimizers = _envs("full")
    stack = StackedModels(models)
    run_epoch_stacked(stack, optimizers, base.data, base.schedule, 1,
                      base.spec.host.grad_clip, env_ids=list(range(ENVS)), measured=[True] * ENVS)
    assert all(module.training for model in models for module in model.modules())
    stack.eval()
    validate_stacked(stack, base.data.val_images, base.data.val_labels, [None] * ENVS, True,
                     base.schedule.batch_size)
    assert not any(module.training for model in models for module in model.modules())


def test_can_stack_needs_envs_with_batches_of_one_size() -> None:
    """Full data always stacks; split data only when the shares match (one env has nothing
    to stack: `stacks_envs` says no, tested below)."""
    assert can_stack(tiny_env(training={"envs": 3}).schedule)  # full
    uneven = tiny_env(task={"max_train": 256, "max_val": 128, "batch_size": 32,
                            "env_data": "split"}, training={"envs": 3})
    assert not can_stack(uneven.schedule)  # 256 / 3 and 128 / 3 do not divide
    even = tiny_env(task={"max_train": 240, "max_val": 120, "batch_size": 32,
                          "env_data": "split"}, training={"envs": 3})
    assert can_stack(even.schedule)


@pytest.mark.parametrize(("batch_envs", "envs", "host", "device", "stacked"), [
    ("auto", 4, {"n_blocks": 3, "base_channels": 8}, "cpu", True),  # 41k multiply-adds
    ("auto", 4, {"n_blocks": 3, "base_channels": 64}, "cpu", False),  # 2.4M
    ("auto", 4, {"n_blocks": 3, "base_channels": 64}, "cuda", True),
    ("auto", 1, {"n_blocks": 3, "base_channels": 8}, "cpu", False),
    (True, 4, {"n_blocks": 3, "base_channels": 64}, "cpu", True),
    (False, 4, {"n_blocks": 3, "base_channels": 8}, "cuda", False),
])
def test_auto_stacks_small_hosts_on_a_cpu_and_every_host_on_a_gpu(
        batch_envs, envs, host, device, stacked) -> None:
    """`training.batch_envs: auto` stacks where stacking is faster: on a CPU a host of at most
    AUTO_MAX_MULTIPLY_ADDS per image (grouped convolutions of wide layers are slower there), on
    a GPU any host; true and false are obeyed; one env has nothing to stack."""
    spec = spec_from_dict({"name": "auto", "host": host,
                           "training": {"envs": envs, "batch_envs": batch_envs}})
    image_shape = (1, 8, 8)  # digits
    small = conv_multiply_adds(spec.host, 1, 8) <= AUTO_MAX_MULTIPLY_ADDS
    assert small == (host["base_channels"] == 8)
    assert stacks_envs(spec.training, spec.host, image_shape, torch.device(device)) is stacked
