"""The action heads are listed once (actions.HEADS); every record with a field per head follows
it, in its order."""

from __future__ import annotations

import dataclasses

from esper.leyline.actions import HEADS, FactoredAction, head_sizes
from esper.leyline.catalogue import CATALOGUE
from esper.leyline.config import EntropyMultipliers
from esper.leyline.events import HeadValues, PPOUpdatePayload


def _fields(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def test_the_records_with_a_field_per_head_name_the_heads_in_order():
    assert _fields(HeadValues) == _fields(FactoredAction) == _fields(EntropyMultipliers) == HEADS
    grad_norms = tuple(name.removeprefix("head_").removesuffix("_grad_norm")
                       for name in _fields(PPOUpdatePayload) if name.endswith("_grad_norm")
                       and name.startswith("head_"))
    assert grad_norms == (*HEADS, "value")


def test_the_catalogue_lists_every_head():
    names = {f.name for f in CATALOGUE}
    for head in HEADS:
        assert f"head_{head}_grad_norm" in names and f"ppo_entropy_per_head_{head}" in names


def test_head_sizes_take_the_slots_and_blueprints_of_the_experiment():
    sizes = dict(zip(HEADS, head_sizes(n_slots=3, n_blueprints=7), strict=True))
    assert (sizes["slot"], sizes["blueprint"], sizes["op"]) == (3, 7, 6)
