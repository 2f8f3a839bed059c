"""Tiny specs and models for kasmina tests, built through the real loader (schema defaults)."""

from __future__ import annotations

from typing import Any

import torch

from esper.experiment import spec_from_dict
from esper.kasmina.host import MorphogeneticModel
from esper.kasmina.slot import SeedSlot
from esper.leyline.config import ExperimentSpec, GatesConfig


def spec(**sections: Any) -> ExperimentSpec:
    """A spec with the schema defaults; keyword arguments replace whole sections."""
    return spec_from_dict({"name": "kasmina-test", **sections})


def gates(**section: Any) -> GatesConfig:
    return spec(gates=section).gates


def tiny_model(seed: int = 0, **sections: Any) -> MorphogeneticModel:
    """A 2-block, 4-channel host on 1x8x8 images with slots r0c0 and r0c1."""
    sections.setdefault("host", {"n_blocks": 2, "base_channels": 4})
    sections.setdefault("slots", {"enabled": ["r0c0", "r0c1"]})
    s = spec(**sections)
    torch.manual_seed(seed)
    return MorphogeneticModel(s.host, s.slots, s.gates, image_shape=(1, 8, 8), num_classes=10)


def tiny_batch(n: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 8, 8, generator=generator), torch.randint(0, 10, (n,), generator=generator)


def to_holding(slot: SeedSlot) -> None:
    """Drive a germinated slot to HOLDING by hand (bypassing G2's epoch count via the state)."""
    slot.advance()  # -> TRAINING
    state = slot.state
    assert state is not None
    state.epochs_in_stage = 100
    state.gradient_health, state.has_exploding = 1.0, False
    assert slot.advance().ok  # -> BLENDING
    while not slot.alpha_controller.is_holding:  # type: ignore[union-attr]
        slot.step_epoch()
    assert slot.advance().ok  # -> HOLDING
