"""Builders of observations for policy tests."""

from __future__ import annotations

from dataclasses import replace

from esper.leyline.actions import Op
from esper.leyline.stages import SeedStage
from esper.tamiyo.observation import EnvObservation, SlotView

EMPTY = SlotView(
    slot_id="r0c0", stage=None, blueprint_index=None, alpha=0.0, alpha_target=0.0,
    alpha_holding=False, epochs_in_stage=0, seed_age=0, improvement_since_stage_start=0.0,
    total_improvement=0.0, contribution=None, contribution_velocity=0.0, gradient_norm=None,
    gradient_health=None, has_vanishing=None, has_exploding=None,
)


def seed(stage: SeedStage, **fields) -> SlotView:
    defaults = dict(blueprint_index=0, epochs_in_stage=1, seed_age=6)
    return replace(EMPTY, stage=stage, **{**defaults, **fields})


def observation(*slots: SlotView, **fields) -> EnvObservation:
    views = tuple(replace(view, slot_id=f"r0c{i}") for i, view in enumerate(slots or (EMPTY,)))
    base = dict(
        epoch=10, episode_length=30, val_loss=0.5, val_accuracy=80.0, loss_history=(0.5,) * 5,
        accuracy_history=(80.0,) * 5, host_stabilised=True, plateau_epochs=3,
        seeds_germinated=0, max_seeds=3, last_op=Op.WAIT, last_success=True, slots=views,
    )
    return EnvObservation(**{**base, **fields})
