import copy

import pytest
import torch
from torch.nn import functional as F

from esper.tolaria.host_step import run_epoch, train_epoch, validate

from .setup import tiny_env


def test_training_learns_digits() -> None:
    env = tiny_env()
    results = [run_epoch(env.model, env.optimizer, env.data, env.schedule, epoch, 0,
                         env.spec.host.grad_clip) for epoch in range(1, 8)]
    assert results[-1].train_loss < results[0].train_loss
    assert max(r.val_accuracy for r in results[-3:]) > 60.0  # chance is 10
    for r in results:
        assert 0.0 <= r.train_accuracy <= 100.0 and 0.0 <= r.val_accuracy <= 100.0
        assert r.contributions == {} and r.gradients == {}


def test_epoch_matches_a_plain_loop() -> None:
    """Same batches, same optimiser: the step equals a hand-written PyTorch loop."""
    env = tiny_env()
    reference = copy.deepcopy(env.model)
    optimizer = torch.optim.SGD(reference.host_parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    batches = env.schedule.train_batches(1, 0)
    result = train_epoch(env.model, env.optimizer, env.data.train_images, env.data.train_labels,
                         batches, grad_clip=1.0)
    reference.train()
    losses = []
    for index in batches:
        optimizer.zero_grad()
        loss = F.cross_entropy(reference(env.data.train_images[index]), env.data.train_labels[index])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(reference.host_parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item() * len(index))
    assert result.loss == pytest.approx(sum(losses) / env.data.n_train, rel=1e-5)
    assert result.samples == env.data.n_train
    for a, b in zip(env.model.host_parameters(), reference.host_parameters()):
        assert torch.allclose(a, b, atol=1e-6)


def test_seeds_are_trained_and_measured() -> None:
    env = tiny_env()
    env.model.germinate("r0c1", "conv_light", accuracy=0.0)
    slot = env.model.slot("r0c1")
    slot.advance()
    before = [p.detach().clone() for p in slot.seed_parameters()]
    result = run_epoch(env.model, env.optimizer, env.data, env.schedule, 1, 0, 1.0)
    assert set(result.gradients) == {"r0c1"} and result.contributions == {"r0c1": None}
    assert slot.state is not None and slot.state.gradient_health is not None
    assert slot.state.seed_gradient_norm_ratio is not None and slot.state.isolation_violations == 0
    assert all(not torch.equal(a, b) for a, b in zip(before, slot.seed_parameters()))
    unmeasured = run_epoch(env.model, env.optimizer, env.data, env.schedule, 2, 0, 1.0,
                           measure_gradients=False)
    assert unmeasured.gradients == {}


def test_split_validation_uses_the_env_share() -> None:
    env = tiny_env(task={"max_train": 64, "max_val": 40, "batch_size": 16, "env_data": "split"},
                   training={"envs": 2})
    indices = env.schedule.val_indices(1)
    assert indices is not None and len(indices) == 20
    result = validate(env.model, env.data, 8, indices)
    assert result.n_samples == 20
    assert len(torch.cat(env.schedule.train_batches(1, 1))) == 32
