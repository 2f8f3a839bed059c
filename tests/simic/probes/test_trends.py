"""`trends` probe: each host's accuracy trend over its episode, and TAMIYO_INITIATED, on a list
of events and in real runs."""

import dataclasses
from collections import Counter
from types import SimpleNamespace

import pytest

from esper.leyline.config import TrendOptions
from esper.leyline.emitter import EventList
from esper.leyline.events import TelemetryEventType as T
from esper.simic.lifecycle_events import StepContext
from esper.simic.probes.trends import TrendsProbe
from esper.tamiyo.signal_tracker import SignalTracker
from tests.simic.probes.env_runs import record_run
from tests.growing_spec import growing_spec
from tests.simic.probes.trend_verdicts import (TRENDS, expected_initiations, expected_trends,
                                              recorded_trends)

SHORT = {"envs": 2, "batches": 2, "episode_length": 6}
DEFAULTS = TrendOptions(window=5, plateau=0.5, degradation=-2.0, improvement=2.0)
EVERY = TrendOptions(window=1, plateau=100.0, degradation=0.0, improvement=0.0)


def test_the_probe_emits_a_verdict_when_it_changes_and_the_epoch_the_host_stabilised():
    emitted = EventList()
    probe = TrendsProbe(TrendOptions(window=1, plateau=0.5, degradation=-2.0, improvement=2.0),
                        emitted)
    env = SimpleNamespace(env_id=1, last_result=None,
                          signals=SignalTracker(growing_spec().signals))
    for epoch, accuracy in enumerate([50.0, 50.2, 50.1, 55.0, 51.0]):
        env.last_result = SimpleNamespace(val_loss=1.0, val_accuracy=accuracy)
        probe.epoch_validated(env, StepContext(3, 1, epoch, 3 * 10 + epoch), stabilised=epoch == 2)
    assert [(e.event_type, e.batch, e.env_id, e.epoch) for e in emitted.events] == [
        (T.PLATEAU_DETECTED, 3, 1, 1), (T.TAMIYO_INITIATED, 3, 1, 2),
        (T.IMPROVEMENT_DETECTED, 3, 1, 3), (T.DEGRADATION_DETECTED, 3, 1, 4)]
    assert emitted.events[3].payload.delta == pytest.approx(-4.0)


def assert_trends_as_recomputed(recorded, options: TrendOptions) -> None:
    expected, got = expected_trends(recorded.events, options), recorded_trends(recorded.events)
    assert [t[:4] for t in got] == [t[:4] for t in expected]
    assert [t[4] for t in got] == pytest.approx([t[4] for t in expected])


@pytest.fixture(scope="module")
def every_trend(tmp_path_factory):
    """Window 1 and thresholds that make every delta a plateau (|delta| < 100) and either an
    improvement (> 0) or a degradation (< 0): overlapping thresholds."""
    return record_run(tmp_path_factory.mktemp("run"), ["trends"],
                      {"trends": dataclasses.asdict(EVERY)}, training=SHORT)


def test_each_host_gets_a_trend_event_when_its_verdict_changes(every_trend):
    assert_trends_as_recomputed(every_trend, EVERY)
    trends = every_trend.of(*TRENDS)
    assert {(e.batch, e.env_id) for e in trends} == {(b, env) for b in range(2) for env in range(2)}
    assert all(e.epoch >= 1 for e in trends)  # nothing before two windows (epochs 0 and 1)
    for e in trends:  # a move wins over the plateau; only an unchanged accuracy is a plateau
        assert (e.event_type is T.PLATEAU_DETECTED) == (e.data.delta == 0.0)
        assert e.data.threshold == (100.0 if e.data.delta == 0.0 else 0.0)
    for e in trends:
        assert e.data.delta == pytest.approx(e.data.recent_mean - e.data.older_mean)


def test_tamiyo_initiated_once_per_env_per_episode_on_the_epoch_the_host_stabilised(every_trend):
    initiated = every_trend.of(T.TAMIYO_INITIATED)
    assert [(e.batch, e.env_id, e.epoch) for e in initiated] == expected_initiations(
        every_trend.events, growing_spec().signals)
    # growing_spec: one steady epoch suffices, and the second epoch is the first with a change
    assert Counter((e.batch, e.env_id) for e in initiated) == {
        (b, env): 1 for b in range(2) for env in range(2)}
    epochs = {(e.batch, e.env_id, e.epoch): e.data for e in every_trend.of(T.EPOCH_COMPLETED)}
    for event in initiated:
        assert event.epoch == 1
        step = epochs[(event.batch, event.env_id, event.epoch)]
        assert (event.data.val_loss, event.data.val_accuracy) == (step.val_loss, step.val_accuracy)
        assert event.data.stable_epochs == event.data.stabilisation_epochs == 1


FROZEN = TrendOptions(window=5, plateau=1.5, degradation=-3.0, improvement=3.0)


@pytest.fixture(scope="module")
def frozen(tmp_path_factory):
    """A frozen host (learning rate 1e-12) that grows no seed, for 12 epochs: two windows of 5
    fill at epoch 9. Its weights stay put but BatchNorm's running statistics still move, and 150
    validation images at chance accuracy put a window's mean within about a point of the
    last, so the plateau band is 1.5 points here."""
    return record_run(tmp_path_factory.mktemp("frozen"), ["trends"],
                      {"trends": dataclasses.asdict(FROZEN)},
                      training={"envs": 2, "batches": 2, "episode_length": 12},
                      host={"lr": 1e-12}, policy={"heuristic": {"min_epoch": 100}})


def test_a_frozen_host_plateaus_as_soon_as_two_windows_are_full(frozen):
    """Before issue 19 the trend ran over batches, each of fresh hosts: a frozen host's batches
    differed by their initialisation and never read as a plateau."""
    assert frozen.of(T.SEED_GERMINATED) == []
    assert_trends_as_recomputed(frozen, FROZEN)
    first = {}
    for e in frozen.of(*TRENDS):
        first.setdefault((e.batch, e.env_id), (e.epoch, e.event_type))
    assert first == {(b, env): (9, T.PLATEAU_DETECTED) for b in range(2) for env in range(2)}


def test_a_learning_host_improves_and_is_never_called_a_plateau_while_it_climbs(tmp_path):
    """The same run with the host learning: its accuracy climbs by more than 2 points a window."""
    recorded = record_run(tmp_path, ["trends"],
                          training={"envs": 1, "batches": 1, "episode_length": 12},
                          policy={"heuristic": {"min_epoch": 100}})
    assert_trends_as_recomputed(recorded, DEFAULTS)
    # one verdict for the whole climb, once two windows are full: no plateau, ever
    assert [e.event_type for e in recorded.of(*TRENDS)] == [T.IMPROVEMENT_DETECTED]


def test_an_unstable_host_degrades_at_the_default_options(tmp_path):
    """Learning rate 0.5 with momentum 0.99: the host's accuracy swings and then falls."""
    recorded = record_run(tmp_path, ["trends"],
                          training={"envs": 2, "batches": 1, "episode_length": 12},
                          host={"lr": 0.5, "momentum": 0.99},
                          policy={"heuristic": {"min_epoch": 100}})
    assert_trends_as_recomputed(recorded, DEFAULTS)
    [degradation] = recorded.of(T.DEGRADATION_DETECTED)
    assert degradation.data.delta < -2.0 and degradation.data.threshold == -2.0


def test_a_delta_within_every_threshold_is_one_plateau_per_host(tmp_path):
    recorded = record_run(tmp_path, ["trends"], {"trends": {"window": 1, "plateau": 100.0,
                                                            "degradation": -100.0,
                                                            "improvement": 100.0}},
                          training={"envs": 1, "batches": 2, "episode_length": 4})
    assert [(e.batch, e.epoch, e.event_type) for e in recorded.of(*TRENDS)] == [
        (0, 1, T.PLATEAU_DETECTED), (1, 1, T.PLATEAU_DETECTED)]


def test_a_wider_window_compares_window_means(tmp_path):
    recorded = record_run(tmp_path, ["trends"], {"trends": {"window": 2, "plateau": 100.0}},
                          training={"envs": 1, "batches": 1, "episode_length": 5})
    accuracies = [e.data.val_accuracy for e in recorded.of(T.EPOCH_COMPLETED)]
    first = recorded.of(*TRENDS)[0]
    assert (first.epoch, first.data.window) == (3, 2)
    assert first.data.older_mean == pytest.approx((accuracies[0] + accuracies[1]) / 2)
    assert first.data.recent_mean == pytest.approx((accuracies[2] + accuracies[3]) / 2)
