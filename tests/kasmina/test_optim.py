"""esper's SGD and Adam equal torch.optim's bit for bit, and share its state dict format."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from esper.kasmina.gradients import clip_grad_norms
from esper.kasmina.optim import SGD, Adam, step_together
from tests.kasmina.models import tiny_model


def _host_loss(model: nn.Module, step: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(step)
    x = torch.randn(16, 1, 8, 8, generator=generator)  # (B, C, H, W)
    y = torch.randint(0, 10, (16,), generator=generator)
    return F.cross_entropy(model(x), y)


class _Recurrent(nn.Module):
    """An LSTM and two heads, like the policy network."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(6, 8, batch_first=True)
        self.policy, self.value = nn.Linear(8, 4), nn.Linear(8, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h, _ = self.lstm(x)  # (B, T, 8)
        return self.policy(h), self.value(h)


def _recurrent_loss(model: nn.Module, step: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(step)
    logits, value = model(torch.randn(3, 5, 6, generator=generator))  # (B, T, F)
    return logits.logsumexp(-1).mean() + value.square().mean()


def _train(model: nn.Module, optimizer, loss_fn, steps: range, clip: float | None = None) -> None:
    for step in steps:
        optimizer.zero_grad()  # set_to_none, the default of both
        loss_fn(model, step).backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(list(model.parameters()), clip)
        optimizer.step()


def _assert_same_params(a: nn.Module, b: nn.Module) -> None:
    for (name, p), q in zip(a.named_parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q), name


def _assert_same_state_dict(ours: dict, theirs: dict) -> None:
    assert ours["param_groups"] == theirs["param_groups"]
    assert ours["state"].keys() == theirs["state"].keys()
    for i, values in theirs["state"].items():
        assert ours["state"][i].keys() == values.keys()
        for key, value in values.items():
            assert ours["state"][i][key].dtype == value.dtype, (i, key)
            assert torch.equal(ours["state"][i][key], value), (i, key)


def _sgd_pair(momentum: float, weight_decay: float):
    model = tiny_model(seed=3)
    twin = copy.deepcopy(model)
    ours = SGD(model.parameters(), lr=0.05, momentum=momentum, weight_decay=weight_decay)
    theirs = torch.optim.SGD(twin.parameters(), lr=0.05, momentum=momentum,
                             weight_decay=weight_decay)
    return model, twin, ours, theirs


@pytest.mark.parametrize(("momentum", "weight_decay"), [(0.9, 5e-4), (0.9, 0.0), (0.0, 0.0)])
def test_sgd_trajectory_is_torchs_bit_for_bit(momentum: float, weight_decay: float) -> None:
    model, twin, ours, theirs = _sgd_pair(momentum, weight_decay)
    _train(model, ours, _host_loss, range(6), clip=1.0)
    _train(twin, theirs, _host_loss, range(6), clip=1.0)
    _assert_same_params(model, twin)
    _assert_same_state_dict(ours.state_dict(), theirs.state_dict())


@pytest.mark.parametrize(("momentum", "weight_decay"), [(0.9, 5e-4), (0.0, 0.0)])
def test_stepping_and_clipping_together_is_each_optimisers_own_bit_for_bit(
        momentum: float, weight_decay: float) -> None:
    """The stacked env step clips every env's host by its own norm and steps all their SGDs in
    foreach passes (`clip_grad_norms`, `step_together`): parameters and momentum buffers equal
    torch's `clip_grad_norm_` and `torch.optim.SGD.step` per model, bit for bit, including a
    model whose gradients are not clipped (norm under the bound) and one with no gradient."""
    pairs = [_sgd_pair(momentum, weight_decay) for _ in range(3)]
    for step in range(5):
        for e, (model, twin, ours, theirs) in enumerate(pairs):
            for optimizer in (ours, theirs):
                optimizer.zero_grad()
            if (e, step) == (2, 1):
                continue  # no backward: no gradient this step
            scale = 1e-3 if e == 1 else 1.0  # env 1's norm stays under the clip
            (_host_loss(model, step) * scale).backward()
            (_host_loss(twin, step) * scale).backward()
            torch.nn.utils.clip_grad_norm_(list(twin.parameters()), 1.0)
            theirs.step()
        clip_grad_norms([list(model.parameters()) for model, *_ in pairs], 1.0)
        step_together([ours for _, _, ours, _ in pairs])
    for model, twin, ours, theirs in pairs:
        _assert_same_params(model, twin)
        _assert_same_state_dict(ours.state_dict(), theirs.state_dict())


@pytest.mark.parametrize("weight_decay", [0.0, 1e-2])
def test_adam_trajectory_is_torchs_bit_for_bit(weight_decay: float) -> None:
    torch.manual_seed(0)
    model = _Recurrent()
    twin = copy.deepcopy(model)
    ours = Adam(model.parameters(), lr=3e-3, eps=1e-5, weight_decay=weight_decay)
    theirs = torch.optim.Adam(twin.parameters(), lr=3e-3, eps=1e-5, weight_decay=weight_decay)
    _train(model, ours, _recurrent_loss, range(8), clip=0.5)
    _train(twin, theirs, _recurrent_loss, range(8), clip=0.5)
    _assert_same_params(model, twin)
    _assert_same_state_dict(ours.state_dict(), theirs.state_dict())


def test_a_torch_adam_state_dict_loads_and_training_goes_on_identically() -> None:
    # policy checkpoints written before esper had its own Adam hold torch.optim.Adam's state
    torch.manual_seed(1)
    model = _Recurrent()
    theirs = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-5)
    _train(model, theirs, _recurrent_loss, range(3))
    twin = copy.deepcopy(model)
    ours = Adam(twin.parameters(), lr=0.5, eps=1e-8)  # the checkpoint's settings win
    ours.load_state_dict(copy.deepcopy(theirs.state_dict()))
    assert ours.param_groups[0]["lr"] == 1e-3 and ours.param_groups[0]["eps"] == 1e-5
    _train(model, theirs, _recurrent_loss, range(3, 6))
    _train(twin, ours, _recurrent_loss, range(3, 6))
    _assert_same_params(model, twin)
    back = torch.optim.Adam(_Recurrent().parameters())  # and ours loads into torch's
    back.load_state_dict(ours.state_dict())
    _assert_same_state_dict(ours.state_dict(), back.state_dict())


def test_state_dict_round_trip_restores_a_snapshot() -> None:
    # the governor's use: deep-copy the state dict, train on, load the copy back
    model, twin, ours, theirs = _sgd_pair(0.9, 5e-4)
    _train(model, ours, _host_loss, range(2))
    _train(twin, theirs, _host_loss, range(2))
    saved_params = copy.deepcopy(model.state_dict())
    saved = copy.deepcopy(ours.state_dict())
    _train(model, ours, _host_loss, range(2, 4))
    model.load_state_dict(saved_params)
    ours.load_state_dict(copy.deepcopy(saved))
    _assert_same_state_dict(ours.state_dict(), saved)
    _train(model, ours, _host_loss, range(2, 5))
    _train(twin, theirs, _host_loss, range(2, 5))
    _assert_same_params(model, twin)


def test_lr_set_in_param_groups_is_used() -> None:
    model, twin, ours, theirs = _sgd_pair(0.9, 0.0)
    for optimizer in (ours, theirs):
        optimizer.param_groups[0]["lr"] = 0.01
    _train(model, ours, _host_loss, range(3))
    _train(twin, theirs, _host_loss, range(3))
    _assert_same_params(model, twin)


def test_unsupported_options_in_a_state_dict_are_refused() -> None:
    model = _Recurrent()
    theirs = torch.optim.Adam(copy.deepcopy(model).parameters(), amsgrad=True)
    with pytest.raises(ValueError, match="amsgrad"):
        Adam(model.parameters()).load_state_dict(theirs.state_dict())
