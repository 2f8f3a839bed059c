"""host.pooling: the sizes each block and slot work at, per option."""

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from esper.kasmina.host import block_sizes

from .models import tiny_model


@pytest.mark.parametrize(("image", "blocks", "pooling", "expected"), [
    (32, 3, "every_block", [32, 16, 8, 4]),
    (8, 4, "every_block", [8, 4, 2, 1, 1]),  # no pool once the output is 1x1
    (5, 2, "every_block", [5, 2, 1]),
    (32, 3, "none", [32, 32, 32, 32]),
    (8, 4, "none", [8, 8, 8, 8, 8]),
])
def test_block_sizes_follow_the_pooling_option(image, blocks, pooling, expected) -> None:
    assert block_sizes(image, blocks, pooling) == expected


def block_outputs(model: nn.Module, x: torch.Tensor) -> list[tuple[int, ...]]:
    """Shapes of every host block's output in one forward pass of `model`."""
    shapes: list[tuple[int, ...]] = []
    hooks = [block.register_forward_hook(lambda _m, _i, out: shapes.append(tuple(out.shape)))
             for block in model.host.blocks]
    model(x)
    for hook in hooks:
        hook.remove()
    return shapes


@pytest.mark.parametrize(("pooling", "sizes", "pools"), [
    ("every_block", [8, 4, 2], 3),
    ("none", [8, 8, 8], 0),
])
def test_host_blocks_and_slots_work_at_the_option_s_sizes(pooling, sizes, pools) -> None:
    model = tiny_model(host={"n_blocks": 3, "base_channels": 4, "pooling": pooling},
                       slots={"enabled": ["r0c0", "r0c2"]})
    host = model.host
    assert host.spatial_sizes == sizes
    assert sum(isinstance(pool, nn.MaxPool2d) for pool in host.pools) == pools
    x = torch.randn(3, 1, 8, 8)
    assert block_outputs(model, x) == [(3, c, s, s) for c, s in zip([4, 8, 16], sizes)]
    assert model.slot("r0c0").probe_shape == (4, sizes[0], sizes[0])
    assert model.slot("r0c2").probe_shape == (16, sizes[2], sizes[2])
    assert model(x).shape == host(x).shape == (3, 10)


def test_a_seed_trains_at_full_size_without_pooling() -> None:
    model = tiny_model(host={"n_blocks": 2, "base_channels": 4, "pooling": "none"})
    assert model.germinate("r0c1", "conv_light", accuracy=0.0).ok
    slot = model.slot("r0c1")
    slot.advance()  # -> TRAINING
    assert slot.seed is not None
    seen: list[tuple[int, ...]] = []
    slot.seed.blueprint.register_forward_hook(lambda _m, inputs, _o: seen.append(inputs[0].shape))
    x, y = torch.randn(4, 1, 8, 8), torch.randint(0, 10, (4,))
    F.cross_entropy(model(x), y).backward()
    assert seen == [(4, 8, 8, 8)]  # block 1's activation at the image size
    grads = [p.grad for p in slot.seed_parameters()]
    assert grads and all(g is not None and g.abs().sum() > 0 for g in grads)
