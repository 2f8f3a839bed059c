"""The named read queries the analyses ask for (esper.registry.queries): undecoded events in
pages, payload field counts (NaN payloads decoded in Python), metric series aggregates with NaN
stored as NULL, curves averaged by step, and replicate group ids."""

from __future__ import annotations

import math

from esper.leyline.events import (
    SeedFossilizedPayload,
    SeedGateEvaluatedPayload,
    Severity,
    TelemetryEvent,
    TelemetryEventType,
)
from esper.registry import Registry
from tests.registry.builders import make_events, new_run

T = TelemetryEventType


def test_event_rows_come_in_seq_order_across_pages_with_their_payload_text(registry: Registry):
    run_id = registry.create_run(new_run()).run_id
    events = make_events(run_id, 25)
    registry.write_events(events[10:] + events[:10])  # written out of seq order
    rows = list(registry.event_rows(run_id, page=4))
    assert [row.seq for row in rows] == list(range(25))
    decoded = list(registry.events(run_id))
    assert [(r.event_type, r.message, r.ts) for r in rows] == [
        (e.event_type.value, e.message, e.ts) for e in decoded]
    assert rows[5].data.count('"NaN"') == 1  # the codec's name for the NaN it holds
    assert [row.seq for row in registry.event_rows(run_id, after_seq=20, page=2)] == [
        21, 22, 23, 24]
    assert list(registry.event_rows("no-such-run")) == []


def _event(run_id: str, seq: int, event_type: TelemetryEventType, data: object) -> TelemetryEvent:
    return TelemetryEvent(run_id, seq, 1000.0 + seq, event_type, Severity.INFO, 0, 0, seq, None,
                          None, "", data)


def test_field_counts_and_gate_failures(registry: Registry):
    run_id = registry.create_run(new_run()).run_id
    fossilized = [SeedFossilizedPayload("conv", 100, 1.0, 2), SeedFossilizedPayload("conv", 100,
                  math.nan, 2), SeedFossilizedPayload("mlp", 7, 0.5, 3)]
    gates = [SeedGateEvaluatedPayload("G1", False, "TRAINING", (), ("improvement", "stability")),
             SeedGateEvaluatedPayload("G1", False, "TRAINING", ("stability",), ("improvement",)),
             SeedGateEvaluatedPayload("G2", True, "BLENDING", ("improvement",), ())]
    registry.write_events(
        [_event(run_id, i, T.SEED_FOSSILIZED, data) for i, data in enumerate(fossilized)]
        + [_event(run_id, 3 + i, T.SEED_GATE_EVALUATED, data) for i, data in enumerate(gates)])
    # the second payload holds a NaN contribution: still counted with its twin
    assert registry.field_counts(run_id, [T.SEED_FOSSILIZED], "params") == {
        (T.SEED_FOSSILIZED.value, 100): 2, (T.SEED_FOSSILIZED.value, 7): 1}
    assert registry.gate_failure_counts(run_id) == [("improvement", 2), ("stability", 1)]


def test_metric_series_aggregates_keep_nan_apart_from_never_measured(registry: Registry):
    run_id = registry.create_run(new_run()).run_id
    registry.append_metrics(run_id, [
        ("acc", 0, 10.0, 0.0), ("acc", 1, 30.0, 0.0), ("acc", 1, 20.0, 0.0),  # last: 20
        ("ret", 0, math.nan, 0.0), ("ret", 1, 2.0, 0.0),
        ("env0/val_accuracy", 0, 10.0, 0.0), ("env1/val_accuracy", 0, 20.0, 0.0),
        ("env0/val_accuracy", 1, 30.0, 0.0), ("env1/val_accuracy", 1, math.nan, 0.0),
        ("env0/r0c0/val_accuracy", 0, 99.0, 0.0),
    ])
    assert registry.last_metric(run_id, "acc") == 20.0
    assert registry.last_metric(run_id, "never") is None
    assert registry.last_metric(run_id, "ret") == 2.0
    registry.append_metrics(run_id, [("ret", 2, math.nan, 0.0)])
    assert math.isnan(registry.last_metric(run_id, "ret"))
    assert registry.series_stats(run_id, "acc") == (3, 3, 30.0, 20.0)
    assert registry.series_stats(run_id, "ret") == (3, 1, 2.0, 2.0)
    assert registry.series_stats(run_id, "never") == (0, 0, None, None)
    assert registry.mean_by_step(run_id, "env[0-9]*/val_accuracy", "env*/*/*") == [
        (0, 15.0), (1, None)]


def test_group_ids_by_prefix_and_latest(registry: Registry):
    for group in ("abc1", "abc2", "abd3", "abc1"):
        registry.create_run(new_run(group_id=group))
    registry.create_run(new_run())
    assert registry.group_ids("abc") == ["abc1", "abc2"]
    assert registry.group_ids("abd3") == ["abd3"]
    assert registry.group_ids("zz") == []
    assert registry.latest_group_ids(2) == ["abc1", "abd3"]
