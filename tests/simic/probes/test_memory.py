"""`memory` probe: resident memory on BATCH_COMPLETED, MEMORY_WARNING above the bound."""

import pytest

from esper.leyline.events import Severity, TelemetryEventType as T
from esper.simic.probes.memory import resident_mb
from tests.simic.probes.env_runs import record_run

SHORT = {"envs": 1, "batches": 2, "episode_length": 2}


def test_every_batch_records_the_resident_memory_and_no_gpu_memory_off_a_gpu(tmp_path):
    recorded = record_run(tmp_path, ["memory"], training=SHORT)
    batches = recorded.of(T.BATCH_COMPLETED)
    assert len(batches) == 2
    for event in batches:
        # the process's RSS: far above nothing, near what this (same) process holds now
        assert 50 < event.data.rss_mb <= resident_mb() * 1.5
        assert event.data.cuda_allocated_mb is None and event.data.cuda_reserved_mb is None
    assert recorded.of(T.MEMORY_WARNING) == []  # 8 GiB default bound


def test_a_tiny_bound_warns_after_every_batch_with_the_recorded_size(tmp_path):
    recorded = record_run(tmp_path, ["memory"], {"memory": {"rss_warning_mb": 1.0}},
                          training=SHORT)
    batches = {e.batch: e.data for e in recorded.of(T.BATCH_COMPLETED)}
    warnings = recorded.of(T.MEMORY_WARNING)
    assert [w.batch for w in warnings] == [0, 1]
    for warning in warnings:
        assert warning.severity is Severity.WARNING
        assert warning.data.rss_mb == batches[warning.batch].rss_mb > 1.0
        assert warning.data.threshold_mb == pytest.approx(1.0)
        assert warning.data.cuda_allocated_mb is None
