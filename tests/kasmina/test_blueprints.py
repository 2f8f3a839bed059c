import pytest
import torch
from torch import nn
from torch.nn import functional as F

from esper.kasmina.blueprints import BLUEPRINTS, build_blueprint, param_count
from esper.kasmina.errors import BlueprintError


def expected_params(name: str, c: int) -> int:
    """docs/pipeline.md §3, with the exact formula where the table says '~'."""
    b = max(8, c // 4)
    r = max(1, c // 4)  # attention's reduced width
    return {
        "noop": 0,
        "norm": 2 * c + 1,
        "attention": 2 * c * r + r + c,  # ~ C^2/2 + C; exactly C^2/2 + 5C/4 for 4 | C
        "depthwise": c * c + 11 * c,
        "bottleneck": 2 * c * b + 9 * b * b + 2 * c,
        "conv_small": c * c + 2 * c,
        "conv_light": 9 * c * c + 2 * c,
        "conv_heavy": 18 * c * c + 4 * c,
    }[name]


def test_registry_holds_the_eight_blueprints() -> None:
    assert set(BLUEPRINTS) == {"noop", "norm", "attention", "depthwise", "bottleneck",
                               "conv_small", "conv_light", "conv_heavy"}


@pytest.mark.parametrize("name", sorted(BLUEPRINTS))
@pytest.mark.parametrize("channels", [8, 16, 32, 64])
def test_param_count_matches_the_table(name: str, channels: int) -> None:
    assert param_count(build_blueprint(name, channels)) == expected_params(name, channels)


@pytest.mark.parametrize("name", sorted(BLUEPRINTS))
@pytest.mark.parametrize("channels,size", [(8, 8), (16, 4), (32, 1)])
def test_blueprint_preserves_shape(name: str, channels: int, size: int) -> None:
    x = torch.randn(3, channels, size, size)
    assert build_blueprint(name, channels)(x).shape == x.shape


def test_unknown_blueprint_names_the_choices() -> None:
    with pytest.raises(BlueprintError, match="unknown blueprint 'mlp'.*conv_heavy"):
        build_blueprint("mlp", 8)


@pytest.mark.parametrize("name", ["norm", "bottleneck"])
def test_residual_blueprints_start_as_identity(name: str) -> None:
    x = torch.randn(2, 8, 4, 4)
    assert torch.allclose(build_blueprint(name, 8)(x), x)


def test_conv_small_starts_near_identity() -> None:
    x = torch.randn(2, 8, 4, 4)
    assert (build_blueprint("conv_small", 8)(x) - x).abs().max() < 1e-2


def test_zero_init_conv_before_groupnorm_relu_would_be_dead() -> None:
    """Why conv_small deviates from 'conv zero-init': no parameter would get any gradient."""
    conv, norm = nn.Conv2d(8, 8, 1, bias=False), nn.GroupNorm(4, 8)
    nn.init.zeros_(conv.weight)
    y = F.relu(norm(conv(torch.randn(2, 8, 4, 4))))
    (y * torch.randn_like(y)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().max() == 0 for p in (conv.weight, norm.weight, norm.bias))


@pytest.mark.parametrize("name", sorted(set(BLUEPRINTS) - {"noop"}))
def test_every_parameter_learns_within_two_steps(name: str) -> None:
    torch.manual_seed(0)
    module = build_blueprint(name, 8)
    before = [p.detach().clone() for p in module.parameters()]
    optimizer = torch.optim.SGD(module.parameters(), lr=0.1)
    x, target = torch.randn(4, 8, 4, 4), torch.randn(4, 8, 4, 4)
    for _ in range(2):
        optimizer.zero_grad()
        F.mse_loss(module(x), target).backward()
        torch.nn.utils.clip_grad_norm_(module.parameters(), 1.0)
        optimizer.step()
    assert all(not torch.equal(b, p) for b, p in zip(before, module.parameters()))
