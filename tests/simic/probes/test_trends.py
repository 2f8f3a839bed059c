"""`trends` probe: accuracy trends over batches and TAMIYO_INITIATED, in real runs."""

from collections import Counter

import pytest

from esper.leyline.events import (AccuracyTrendPayload, BatchCompletedPayload,
                                  TelemetryEventType as T)
from esper.leyline.config import TrendOptions
from esper.nissa.hub import TelemetryHub
from esper.simic.probes.trends import TrendsProbe
from tests.simic.probes.env_runs import record_run

TRENDS = (T.PLATEAU_DETECTED, T.DEGRADATION_DETECTED, T.IMPROVEMENT_DETECTED)
SHORT = {"envs": 2, "batches": 3, "episode_length": 3}


@pytest.fixture(scope="module")
def every_trend(tmp_path_factory):
    """Window 1 and thresholds that make every delta a plateau (|delta| < 100) and either an
    improvement (> 0) or a degradation (< 0): overlapping thresholds."""
    return record_run(tmp_path_factory.mktemp("run"), ["trends"],
                      {"trends": {"window": 1, "plateau": 100.0, "degradation": 0.0,
                                  "improvement": 0.0}}, training=SHORT)


def test_each_batch_after_the_first_window_gets_the_trend_its_accuracies_show(every_trend):
    means = [e.data.mean_val_accuracy for e in every_trend.of(T.BATCH_COMPLETED)]
    assert len(means) == 3
    trends = every_trend.of(*TRENDS)
    assert {e.batch for e in trends} == {1, 2}  # nothing before two windows are full
    for event in trends:
        older, recent = means[event.batch - 1], means[event.batch]
        assert (event.env_id, event.epoch) == (None, None)
        assert event.data == AccuracyTrendPayload(
            delta=pytest.approx(recent - older), recent_mean=recent, older_mean=older, window=1,
            threshold=event.data.threshold)
    for batch in (1, 2):
        delta = means[batch] - means[batch - 1]
        assert delta != 0.0
        expected = [T.IMPROVEMENT_DETECTED if delta > 0 else T.DEGRADATION_DETECTED]
        assert [e.event_type for e in trends if e.batch == batch] == expected  # one verdict
    assert {e.data.threshold for e in trends} == {0.0}


def test_tamiyo_initiated_once_per_env_per_episode_on_the_epoch_the_host_stabilised(every_trend):
    initiated = every_trend.of(T.TAMIYO_INITIATED)
    # growing_spec: one steady epoch suffices, and the second epoch is the first with a change
    assert Counter((e.batch, e.env_id) for e in initiated) == {
        (b, env): 1 for b in range(3) for env in range(2)}
    epochs = {(e.batch, e.env_id, e.epoch): e.data for e in every_trend.of(T.EPOCH_COMPLETED)}
    for event in initiated:
        assert event.epoch == 1
        step = epochs[(event.batch, event.env_id, event.epoch)]
        assert (event.data.val_loss, event.data.val_accuracy) == (step.val_loss, step.val_accuracy)
        assert event.data.stable_epochs == event.data.stabilisation_epochs == 1


def test_a_delta_within_every_threshold_is_one_plateau(tmp_path):
    recorded = record_run(tmp_path, ["trends"], {"trends": {"window": 1, "plateau": 100.0,
                                                            "degradation": -100.0,
                                                            "improvement": 100.0}},
                          training={"envs": 1, "batches": 2, "episode_length": 3})
    assert [e.event_type for e in recorded.of(*TRENDS)] == [T.PLATEAU_DETECTED]


def test_a_wider_window_compares_window_means(tmp_path):
    recorded = record_run(tmp_path, ["trends"], {"trends": {"window": 2, "plateau": 100.0}},
                          training={"envs": 1, "batches": 4, "episode_length": 3})
    means = [e.data.mean_val_accuracy for e in recorded.of(T.BATCH_COMPLETED)]
    [plateau] = recorded.of(T.PLATEAU_DETECTED)
    assert plateau.batch == 3
    assert plateau.data.window == 2
    assert plateau.data.older_mean == pytest.approx((means[0] + means[1]) / 2)
    assert plateau.data.recent_mean == pytest.approx((means[2] + means[3]) / 2)


class _Events:
    name = "events"

    def __init__(self) -> None:
        self.events = []

    def write(self, events) -> None:
        self.events.extend(events)

    def close(self) -> None:
        pass


def test_default_thresholds_separate_plateau_degradation_and_improvement():
    sink = _Events()
    hub = TelemetryHub("run", [sink])
    probe = TrendsProbe(TrendOptions(window=1, plateau=0.5, degradation=-2.0, improvement=2.0), hub)
    for batch, accuracy in enumerate([50.0, 60.0, 59.8, 50.0, 51.0]):
        probe.batch_completed(batch, BatchCompletedPayload(accuracy, 0.0, 2))
    hub.close()
    assert [(e.batch, e.event_type, e.data.delta) for e in sink.events] == [
        (1, T.IMPROVEMENT_DETECTED, pytest.approx(10.0)),
        (2, T.PLATEAU_DETECTED, pytest.approx(-0.2)),
        (3, T.DEGRADATION_DETECTED, pytest.approx(-9.8)),
    ]  # batch 4: +1.0 is none of them
