"""`throughput` probe: THROUGHPUT_MEASURED per env per epoch, with measured values."""

from collections import Counter

import pytest

from esper.experiment.compile import compile_spec
from esper.leyline.events import TelemetryEventType as T
from esper.simic.env_state import EnvState
from esper.simic.probes.throughput import DataWait, TimedBatchSchedule
from esper.tolaria.host_step import run_epoch
from tests.growing_spec import growing_spec
from tests.simic.probes.env_runs import record_run

SHORT = {"envs": 2, "batches": 2, "episode_length": 3}


@pytest.fixture(scope="module")
def timed(tmp_path_factory):
    return record_run(tmp_path_factory.mktemp("run"), ["throughput"], training=SHORT)


def test_every_env_step_is_timed_once(timed):
    events = timed.of(T.THROUGHPUT_MEASURED)
    assert Counter((e.batch, e.env_id, e.epoch) for e in events) == {
        (b, env, epoch): 1 for b in range(2) for env in range(2) for epoch in range(3)}


def test_step_time_wait_and_fps_are_measured_and_consistent(timed):
    for event in timed.of(T.THROUGHPUT_MEASURED):
        data = event.data
        assert data.clock == "cpu"  # cuda_timing is off
        assert data.step_time_ms > 0
        assert 0 < data.dataloader_wait_ms < data.step_time_ms
        assert data.fps == pytest.approx(1000.0 / data.step_time_ms)


def test_the_wait_counts_building_the_batches_and_gathering_each_one():
    spec = growing_spec(telemetry={"probes": ["throughput"]})
    pipeline = compile_spec(spec)
    data = pipeline.data
    env = EnvState.fresh(0, spec, data, pipeline.device)
    wait = DataWait()
    schedule = TimedBatchSchedule(data.n_train, data.n_val, 50, 1, "full", 1, wait=wait)
    seen = []  # the wait as each forward starts
    env.model.register_forward_pre_hook(wait.forward_started)
    env.model.register_forward_pre_hook(lambda module, args: seen.append(wait.seconds))
    run_epoch(env.model, env.host_optimizer, data, schedule, 0, 0, 1.0)
    batches = -(-data.n_train // 50)
    training, validation = seen[:batches], seen[batches:]
    # the batches' build and the first gather come before the first forward; every later
    # training batch adds its gather; validation forwards were never asked a batch for
    assert training[0] > 0 and all(b > a for a, b in zip(training, training[1:]))
    assert validation and set(validation) == {training[-1]} == {wait.seconds}
