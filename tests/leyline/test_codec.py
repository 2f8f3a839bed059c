"""The payload JSON codec: round trips, NaN and infinities, bulk encoding, envelopes."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from esper.leyline.actions import HEADS
from esper.leyline.codec import decode_payload, encode_event, encode_payload, encode_payloads
from esper.leyline.events import (
    EpochCompletedPayload,
    HeadValues,
    PPOUpdatePayload,
    RunFinishedPayload,
    SeedStageChangedPayload,
    Severity,
    SlotSummary,
    TelemetryEvent,
    TelemetryEventType,
)
from esper.leyline.rewards import RewardComponents

floats = st.floats(allow_nan=True, allow_infinity=True)
maybe_floats = st.none() | floats
text = st.text(max_size=20)
slots = st.builds(SlotSummary, text, text, st.none() | text, floats, maybe_floats)
rewards = st.builds(RewardComponents, floats, floats, floats, floats, floats, floats, floats)
epochs = st.builds(
    EpochCompletedPayload, floats, floats, floats, floats, st.integers(0, 10**6),
    st.integers(0, 10**6), st.lists(slots, max_size=4).map(tuple), action=text,
    action_slot=st.none() | text, action_success=st.booleans(), reward=floats,
    reward_components=rewards,
)
stage_changes = st.builds(
    SeedStageChangedPayload, text, text, maybe_floats, st.none() | st.booleans(),
    st.none() | st.booleans(), st.none() | st.integers(0, 100), maybe_floats,
)
heads = st.builds(HeadValues, *[floats] * len(HEADS))
ppo_updates = st.builds(
    PPOUpdatePayload, policy_loss=floats, value_loss=floats, entropy=floats,
    entropy_per_head=heads, approx_kl=floats, clip_fraction=floats,
    explained_variance=maybe_floats, ratio_mean=floats, ratio_min=floats, ratio_max=floats,
    ratio_std=floats, ratio_max_per_head=heads, pre_clip_grad_norm=floats, advantage_mean=floats,
    advantage_std=floats, return_mean=floats, return_std=floats, entropy_coef=floats,
    epochs_completed=st.integers(0, 100), early_stopped=st.booleans(), update_time_ms=floats,
)


def _same(a: object, b: object) -> bool:
    """Equality where NaN equals NaN (payload == payload is False when a field is NaN)."""
    if dataclasses.is_dataclass(a):
        return type(a) is type(b) and all(
            _same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a)
        )
    if isinstance(a, tuple):
        return isinstance(b, tuple) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return a == b and type(a) is type(b)


@given(epochs)
def test_epoch_payload_round_trips_exactly_with_nan_and_infinity(payload):
    text_ = encode_payload(payload)
    assert _same(decode_payload(TelemetryEventType.EPOCH_COMPLETED, text_), payload)


@given(st.lists(stage_changes | ppo_updates, max_size=20))
def test_bulk_encoding_equals_one_by_one(payloads):
    assert encode_payloads(payloads) == [encode_payload(p) for p in payloads]


def test_nan_is_not_confused_with_none():
    measured_nan = SeedStageChangedPayload("TRAINING", "BLENDING", gradient_health=float("nan"))
    not_measured = SeedStageChangedPayload("TRAINING", "BLENDING", gradient_health=None)
    assert '"gradient_health":"NaN"' in encode_payload(measured_nan)
    assert '"gradient_health":null' in encode_payload(not_measured)
    back = decode_payload(TelemetryEventType.SEED_STAGE_CHANGED, encode_payload(measured_nan))
    assert math.isnan(back.gradient_health)


def test_finite_floats_whose_sum_overflows_are_written_like_any_other():
    # 1.5e308 + 1.5e308 overflows to inf: the batch screen's false alarm must not change the text
    # (the stdlib writes 1.5e+308, msgspec 1.5e308), or the stored text would depend on batching.
    huge = SeedStageChangedPayload("TRAINING", "BLENDING", gradient_health=1.5e308,
                                   seed_gradient_norm_ratio=1.5e308)
    assert '"gradient_health":1.5e308' in encode_payload(huge)
    assert encode_payloads([huge, huge]) == [encode_payload(huge)] * 2


def test_nested_slots_come_back_as_tuples_of_slot_summaries():
    payload = EpochCompletedPayload(
        0.5, 90.0, 0.6, 88.0, 1, 0, (SlotSummary("r0c0", "TRAINING", "norm", 0.0, None),),
        action="WAIT", action_slot=None, action_success=True, reward=0.25,
        reward_components=RewardComponents(attribution=0.25),
    )
    back = decode_payload(TelemetryEventType.EPOCH_COMPLETED, encode_payload(payload))
    assert back == payload and isinstance(back.slots, tuple)
    assert isinstance(back.slots[0], SlotSummary)
    assert isinstance(back.reward_components, RewardComponents)


def test_a_payload_class_outside_the_map_is_refused():
    @dataclasses.dataclass(frozen=True)
    class Stray:
        x: int

    with pytest.raises(TypeError, match="Stray"):
        encode_payload(Stray(1))


def test_encode_event_is_one_json_object_with_the_envelope_and_the_payload():
    event = TelemetryEvent(
        "abc123abc123", 7, 1.5, TelemetryEventType.RUN_FINISHED, Severity.INFO, None, 2, None,
        None, "r0c1", "done", RunFinishedPayload("FINISHED", 7, 0),
    )
    line = encode_event(event)
    assert "\n" not in line
    assert json.loads(line) == {
        "run_id": "abc123abc123", "seq": 7, "ts": 1.5, "event_type": "RUN_FINISHED",
        "severity": "info", "batch": None, "env_id": 2, "epoch": None, "seed_id": None,
        "slot_id": "r0c1", "message": "done",
        "data": {"status": "FINISHED", "events_emitted": 7, "events_dropped": 0},
    }


def test_integers_beyond_64_bits_round_trip_exactly():
    payload = SeedStageChangedPayload("TRAINING", "BLENDING", gradient_health=float("inf"))
    wide = EpochCompletedPayload(
        0.5, 90.0, 0.6, 88.0, 2**70, -(2**65), (), action="WAIT", action_slot=None,
        action_success=True, reward=0.25, reward_components=RewardComponents(),
    )
    texts = encode_payloads([wide, payload])
    assert texts == [encode_payload(wide), encode_payload(payload)]
    back = decode_payload(TelemetryEventType.EPOCH_COMPLETED, texts[0])
    assert (back.seeds_live, back.seeds_fossilized) == (2**70, -(2**65))
    assert '"gradient_health":"Infinity"' in texts[1]
