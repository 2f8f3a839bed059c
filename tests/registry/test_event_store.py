"""Writing events into runs.db and reading them back: identical, in seq order, filtered."""

from __future__ import annotations

import math

from esper.leyline.events import TelemetryEventType
from esper.registry import Registry

from .builders import make_events, new_run


def _same(a, b) -> bool:
    """Event equality where NaN equals NaN."""
    if a == b:
        return True
    return a._replace(data=None) == b._replace(data=None) and repr(a.data) == repr(b.data)


def test_events_written_are_read_back_identical_and_in_order(registry: Registry):
    run = registry.create_run(new_run())
    events = make_events(run.run_id, 5_000)
    for start in range(0, 5_000, 1_234):  # batches of several sizes, chunk boundaries crossed
        registry.write_events(events[start : start + 1_234])
    back = list(registry.events(run.run_id))
    assert len(back) == 5_000
    assert all(_same(a, b) for a, b in zip(back, events))
    assert math.isnan(back[5].data.val_loss)  # NaN stays NaN, not None
    assert back[8].data.val_loss is None
    assert registry.run(run.run_id).event_count == 5_000


def test_batches_of_any_size_are_inserted_with_a_few_fixed_statements(registry: Registry):
    # A statement per batch size would be prepared afresh for most batches of a real run (as
    # costly as running it) and fill the statement cache with statements of thousands of rows.
    run = registry.create_run(new_run())
    inserts: set[str] = set()
    registry._db.conn.set_trace_callback(
        lambda sql: inserts.add(sql) if sql.startswith("INSERT INTO events") else None
    )
    events, start = make_events(run.run_id, 12_000), 0
    for size in (1, 7, 300, 999, 2_500, 2_501, 3_333, 1_299, 1_060):  # 12,000 events in all
        registry.write_events(events[start : start + size])
        start += size
    registry._db.conn.set_trace_callback(None)
    assert [e.seq for e in registry.events(run.run_id)] == list(range(12_000))
    assert {sql.count("),(") + 1 for sql in inserts} <= {2_500, *(2**k for k in range(12))}


def test_seq_has_no_gaps_and_events_survive_reopening(db_path):
    with Registry.open(db_path) as registry:
        run = registry.create_run(new_run())
        registry.write_events(make_events(run.run_id, 3_001))
    with Registry.open(db_path, create=False) as registry:
        seqs = [e.seq for e in registry.events(run.run_id)]
    assert seqs == list(range(3_001))


def test_events_of_two_runs_stay_apart(registry: Registry):
    a, b = registry.create_run(new_run()), registry.create_run(new_run())
    registry.write_events(make_events(a.run_id, 10) + make_events(b.run_id, 4))
    assert [e.seq for e in registry.events(b.run_id)] == [0, 1, 2, 3]
    assert registry.run(a.run_id).event_count == 10 and registry.run(b.run_id).event_count == 4


def test_event_filters_type_env_batch_and_limit(registry: Registry):
    run = registry.create_run(new_run())
    events = make_events(run.run_id, 300)
    registry.write_events(events)

    def seqs(**filters):
        return [e.seq for e in registry.events(run.run_id, **filters)]

    batch_completed = [TelemetryEventType.BATCH_COMPLETED]
    assert seqs(types=batch_completed) == [e.seq for e in events if e.seq % 3 == 0]
    assert seqs(env_id=2) == [e.seq for e in events if e.env_id == 2]
    assert seqs(batch=7) == list(range(70, 80))
    assert seqs(types=batch_completed, env_id=1) == [
        e.seq for e in events if e.seq % 3 == 0 and e.env_id == 1]
    assert seqs(limit=5) == [0, 1, 2, 3, 4]
    assert seqs(env_id=0, limit=3) == [0, 4, 8]
    assert seqs(types=[TelemetryEventType.EPOCH_COMPLETED]) == []


def test_a_long_run_is_streamed_page_by_page(registry: Registry):
    run = registry.create_run(new_run())
    registry.write_events(make_events(run.run_id, 4_500))
    stream = registry.events(run.run_id)
    assert next(stream).seq == 0  # a generator: nothing is read until asked
    assert sum(1 for _ in stream) == 4_499


def test_event_counts_by_type(registry: Registry):
    run = registry.create_run(new_run())
    registry.write_events(make_events(run.run_id, 10))
    assert registry.event_counts(run.run_id) == [
        ("BATCH_COMPLETED", 4), ("GOVERNOR_ROLLBACK", 3), ("SEED_STAGE_CHANGED", 3)]
