"""With the env-side probes off, nothing of theirs runs, their events are absent and their
fields None (never a plausible default); with all of them on, the run records each one."""

from collections import Counter

import pytest

from esper.experiment.compile import compile_spec
from esper.leyline.emitter import EventList
from esper.leyline.events import TelemetryEventType as T
from esper.simic.probes.env_probes import EnvProbes
from esper.simic.probes.throughput import TimedBatchSchedule
from esper.tolaria.batching import BatchSchedule
from tests.growing_spec import growing_spec
from tests.simic.probes.env_runs import record_run

ENV_PROBES = ["trends", "seed_telemetry", "throughput", "cuda_timing", "diagnostics", "memory",
              "reward_hacking"]
PROBE_EVENTS = {T.PLATEAU_DETECTED, T.DEGRADATION_DETECTED, T.IMPROVEMENT_DETECTED,
                T.TAMIYO_INITIATED, T.THROUGHPUT_MEASURED, T.ANALYTICS_SNAPSHOT,
                T.MEMORY_WARNING, T.REWARD_HACKING_SUSPECTED}


@pytest.fixture(scope="module")
def probes_off(tmp_path_factory):
    """The growing experiment (its seeds fossilise) with none of the env-side probes."""
    return record_run(tmp_path_factory.mktemp("run"), [],
                      training={"envs": 1, "batches": 1, "episode_length": 14})


def test_no_probe_event_and_every_probe_field_none(probes_off):
    assert probes_off.result.summary.seeds_fossilized >= 1
    assert not PROBE_EVENTS & {e.event_type for e in probes_off.events}
    for event in probes_off.of(T.BATCH_COMPLETED):
        assert (event.data.rss_mb, event.data.cuda_allocated_mb,
                event.data.cuda_reserved_mb) == (None, None, None)
    slots = [slot for e in probes_off.of(T.EPOCH_COMPLETED) for slot in e.data.slots]
    assert any(slot.blueprint is not None for slot in slots)
    assert all(slot.telemetry is None for slot in slots)
    assert probes_off.artifacts == {} and probes_off.result.summary.artifacts == {}


def test_a_probe_that_is_off_has_no_object_and_no_hook():
    spec = growing_spec()
    pipeline = compile_spec(spec)
    emitted = EventList()
    off = EnvProbes(spec, pipeline.data, emitted, pipeline.device, None)
    on = EnvProbes(growing_spec(telemetry={"probes": ENV_PROBES}), pipeline.data, emitted,
                   pipeline.device, None)
    assert type(off.schedule) is BatchSchedule and isinstance(on.schedule, TimedBatchSchedule)
    assert (off.profiler, off.memory, off.timing, off.seed_telemetry) == (None,) * 4
    assert (off._step_started, off._step_finished, off._epoch_validated,
            off._batch_completed) == ((), (), (), ())
    assert on.timing is not None and on.seed_telemetry is not None  # brackets a step, an episode
    assert len(on._epoch_validated) == 4 and len(on._step_finished) == 1  # diagnostics


def test_all_env_probes_on_together_record_each_of_them(tmp_path):
    # every delta a plateau: each host's verdict stays a plateau, one event per host
    recorded = record_run(tmp_path, ENV_PROBES, {"trends": {"window": 1, "plateau": 100.0,
                                                            "degradation": -1000.0,
                                                            "improvement": 1000.0},
                                                 "memory": {"rss_warning_mb": 1.0}},
                          training={"envs": 2, "batches": 2, "episode_length": 5})
    counts = Counter(e.event_type for e in recorded.events)
    assert counts[T.THROUGHPUT_MEASURED] == counts[T.EPOCH_COMPLETED] == 2 * 2 * 5
    assert counts[T.ANALYTICS_SNAPSHOT] == 2 * 2  # every 5 epochs
    assert counts[T.TAMIYO_INITIATED] == 2 * 2
    assert counts[T.PLATEAU_DETECTED] == 2 * 2 and counts[T.MEMORY_WARNING] == 2
    assert all(e.data.rss_mb is not None for e in recorded.of(T.BATCH_COMPLETED))
    assert any(slot.telemetry is not None
               for e in recorded.of(T.EPOCH_COMPLETED) for slot in e.data.slots)
