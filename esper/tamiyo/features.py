"""Observation -> feature vector for the learned policies (PIPELINE.md section 4).

Unmeasured values are written as a sentinel together with a 0/1 "measured" flag, never as a
plausible 0. Blueprint identity is not a feature: it goes to the policy's embedding as an index
(0: no seed, i + 1: the experiment's blueprint i).
"""

from __future__ import annotations

import torch

from esper.leyline.actions import Op
from esper.leyline.stages import SeedStage
from esper.tamiyo.signal_tracker import HISTORY
from esper.tamiyo.observation import EnvObservation, SlotView

UNMEASURED = -1.0  # sentinel beside a 0 "measured" flag
_STAGES = (None, SeedStage.GERMINATED, SeedStage.TRAINING, SeedStage.BLENDING, SeedStage.HOLDING,
           SeedStage.FOSSILIZED, SeedStage.PRUNED, SeedStage.EMBARGOED, SeedStage.RESETTING)
_STAGE_INDEX = {stage: i for i, stage in enumerate(_STAGES)}
BASE_FEATURES = 4 + 2 * HISTORY + 3 + len(Op) + 1
SLOT_FEATURES = len(_STAGES) + 5 + 2 * 4 + 2 + 2


def observation_size(n_slots: int) -> int:
    """Length of the feature vector of an env with `n_slots` slots."""
    return BASE_FEATURES + n_slots * SLOT_FEATURES


def _measured(value: float | None, scale: float = 1.0) -> list[float]:
    if value is None:
        return [UNMEASURED, 0.0]
    return [max(-1.0, min(1.0, value / scale)), 1.0]


def _padded(history: tuple[float, ...], scale: float) -> list[float]:
    values = [min(v / scale, 10.0) if v == v else 10.0 for v in history]  # NaN loss -> ceiling
    return [UNMEASURED] * (HISTORY - len(values)) + values


def _flag(value: bool | None) -> float:
    return UNMEASURED if value is None else float(value)


def _slot_features(view: SlotView) -> list[float]:
    stage = [0.0] * len(_STAGES)
    stage[_STAGE_INDEX.get(view.stage, 0)] = 1.0
    return [
        *stage,
        view.alpha, view.alpha_target, float(view.alpha_holding),
        min(view.epochs_in_stage, 50) / 50, min(view.seed_age, 50) / 50,
        *_measured(view.contribution, 10.0),
        *_measured(view.contribution_velocity, 10.0),
        *_measured(None if view.gradient_norm is None else min(view.gradient_norm, 10.0), 10.0),
        *_measured(view.gradient_health),
        _flag(view.has_vanishing), _flag(view.has_exploding),
        max(-1.0, min(1.0, view.improvement_since_stage_start / 10)),
        max(-1.0, min(1.0, view.total_improvement / 10)),
    ]


def encode(obs: EnvObservation) -> list[float]:
    """The feature vector of one observation (length `observation_size(len(obs.slots))`)."""
    last_op = [0.0] * len(Op)
    last_op[obs.last_op] = 1.0
    loss = obs.val_loss if obs.val_loss == obs.val_loss else 10.0
    n_slots = max(len(obs.slots), 1)
    base = [
        obs.epoch / obs.episode_length, min(loss, 10.0), obs.val_accuracy / 100,
        float(obs.host_stabilised),
        *_padded(obs.loss_history, 1.0), *_padded(obs.accuracy_history, 100.0),
        obs.count(SeedStage.TRAINING) / n_slots, obs.count(SeedStage.BLENDING) / n_slots,
        obs.count(SeedStage.HOLDING, SeedStage.FOSSILIZED) / n_slots,
        *last_op, float(obs.last_success),
    ]
    return base + [x for view in obs.slots for x in _slot_features(view)]


def encode_batch(observations: list[EnvObservation]) -> tuple[torch.Tensor, torch.Tensor]:
    """Features (N, F) and blueprint indices (N, S) of the envs' observations."""
    features = torch.tensor([encode(obs) for obs in observations], dtype=torch.float32)
    blueprints = torch.tensor(
        [[0 if v.blueprint_index is None else v.blueprint_index + 1 for v in obs.slots]
         for obs in observations], dtype=torch.int64)
    return features, blueprints
