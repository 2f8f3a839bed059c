"""Observation -> feature vector for the learned policies (docs/pipeline.md §4).

Unmeasured values are written as a sentinel together with a 0/1 "measured" flag, never as a
plausible 0. Blueprint identity is not a feature: it goes to the policy's embedding as an index
(0: no seed, i + 1: the experiment's blueprint i). With the `seed_telemetry` probe on, each slot
adds the 10 features of its seed's `SeedTelemetry` (docs/pipeline.md §7).
"""

from __future__ import annotations

import math

import torch

from esper.leyline.actions import Op
from esper.leyline.seed_telemetry import SeedTelemetry
from esper.leyline.stages import SeedStage
from esper.tamiyo.signal_tracker import HISTORY
from esper.tamiyo.observation import EnvObservation, SlotView

UNMEASURED = -1.0  # sentinel beside a 0 "measured" flag
_STAGES = (None, SeedStage.GERMINATED, SeedStage.TRAINING, SeedStage.BLENDING, SeedStage.HOLDING,
           SeedStage.FOSSILIZED, SeedStage.PRUNED, SeedStage.EMBARGOED, SeedStage.RESETTING)
_STAGE_INDEX = {stage: i for i, stage in enumerate(_STAGES)}
BASE_FEATURES = 4 + 2 * HISTORY + 3 + len(Op) + 1 + 2 + 2
SLOT_FEATURES = len(_STAGES) + 5 + 2 * 4 + 2 + 2
SEED_TELEMETRY_FEATURES = 10  # per slot, with the seed_telemetry probe on
_MAX_STAGE = max(stage.value for stage in SeedStage)  # SeedStage values start at 0 (UNKNOWN)


def observation_size(n_slots: int, seed_telemetry: bool) -> int:
    """Length of the feature vector of an env with `n_slots` slots; `seed_telemetry`: the
    probe of that name is on, and every slot carries its seed's telemetry features."""
    per_slot = SLOT_FEATURES + (SEED_TELEMETRY_FEATURES if seed_telemetry else 0)
    return BASE_FEATURES + n_slots * per_slot


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


def telemetry_features(telemetry: SeedTelemetry | None) -> list[float]:
    """The 10 features of a seed's telemetry snapshot, each in [-1, 1]: min(grad_norm, 10)/10,
    gradient health, has_vanishing, has_exploding, min(epochs_in_stage, 50)/50, accuracy/100,
    clamp(accuracy_delta/10), stage value normalised to [0, 1], alpha, epoch/max_epochs.
    Unmeasured gradient signals (and every feature of an empty slot) are the sentinel."""
    if telemetry is None:
        return [UNMEASURED] * SEED_TELEMETRY_FEATURES
    norm = telemetry.gradient_norm
    if norm is not None:  # a non-finite norm is exploding: the ceiling
        norm = min(norm, 10.0) / 10 if math.isfinite(norm) else 1.0
    return [
        UNMEASURED if norm is None else norm,
        UNMEASURED if telemetry.gradient_health is None else telemetry.gradient_health,
        _flag(telemetry.has_vanishing), _flag(telemetry.has_exploding),
        min(telemetry.epochs_in_stage, 50) / 50,
        telemetry.accuracy / 100,
        max(-1.0, min(1.0, telemetry.accuracy_delta / 10)),
        SeedStage[telemetry.stage].value / _MAX_STAGE,
        telemetry.alpha,
        telemetry.epoch / max(telemetry.max_epochs, 1),
    ]


def encode(obs: EnvObservation) -> list[float]:
    """The feature vector of one observation (length
    `observation_size(len(obs.slots), obs.seed_telemetry)`)."""
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
        *_measured(None if obs.committed_accuracy is None else obs.committed_accuracy / 100),
        *_measured(obs.real_gain, 10.0),
    ]
    slots = [x for view in obs.slots for x in _slot_features(view)
             + (telemetry_features(view.telemetry) if obs.seed_telemetry else [])]
    return base + slots


def encode_batch(observations: list[EnvObservation]) -> tuple[torch.Tensor, torch.Tensor]:
    """Features (N, F) and blueprint indices (N, S) of the envs' observations."""
    features = torch.tensor([encode(obs) for obs in observations], dtype=torch.float32)
    blueprints = torch.tensor(
        [[0 if v.blueprint_index is None else v.blueprint_index + 1 for v in obs.slots]
         for obs in observations], dtype=torch.int64)
    return features, blueprints
