"""Event types and payload classes (the contract; the codec is tested in test_codec.py)."""

from __future__ import annotations

import dataclasses
import typing

import pytest

from esper.leyline.events import (
    PAYLOAD_TYPES,
    SeedStageChangedPayload,
    Severity,
    TelemetryEventType,
)

CORE = [
    "TRAINING_STARTED", "EPOCH_COMPLETED", "BATCH_COMPLETED", "SEED_GERMINATED",
    "SEED_STAGE_CHANGED", "SEED_FOSSILIZED", "SEED_PRUNED", "PPO_UPDATE_COMPLETED",
    "GOVERNOR_ROLLBACK", "EPISODE_OUTCOME", "RUN_FINISHED",
]
PROBES = [
    "SEED_GATE_EVALUATED", "GRADIENT_PATHOLOGY_DETECTED", "RATIO_EXPLOSION_DETECTED",
    "RATIO_COLLAPSE_DETECTED", "VALUE_COLLAPSE_DETECTED", "NUMERICAL_INSTABILITY_DETECTED",
    "PLATEAU_DETECTED", "DEGRADATION_DETECTED", "IMPROVEMENT_DETECTED", "TAMIYO_INITIATED",
    "ANALYTICS_SNAPSHOT", "MEMORY_WARNING", "REWARD_HACKING_SUSPECTED",
]


def test_every_event_of_pipeline_section_7_is_a_type_whose_value_is_its_name():
    names = {t.name for t in TelemetryEventType}
    assert set(CORE) | set(PROBES) <= names
    assert all(t.value == t.name for t in TelemetryEventType)


@pytest.mark.parametrize("name", CORE)
def test_every_core_event_has_a_frozen_payload_class(name):
    cls = PAYLOAD_TYPES[TelemetryEventType[name]]
    assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen


def test_severity_values_are_the_design_names():
    assert [s.value for s in Severity] == ["debug", "info", "warning", "error", "critical"]


def test_payload_fields_that_may_be_unmeasured_are_typed_optional():
    hints = typing.get_type_hints(SeedStageChangedPayload)
    for name in ("gradient_health", "has_vanishing", "has_exploding", "isolation_violations",
                 "seed_gradient_norm_ratio"):
        assert type(None) in typing.get_args(hints[name])

