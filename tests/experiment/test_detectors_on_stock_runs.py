"""The detectors of PIPELINE.md section 7 on the stock monitoring experiments, run as shipped, at
their own thresholds: what a healthy run provokes and what it leaves silent (issue 19).

p4_monitoring (PPO probes and trends, 2 envs x 4 batches x 15 epochs) and telemetry_wiring
(every probe but the profiler, 2 envs x 3 batches x 15 epochs), each once per module (~25 s and
~20 s on one core), MLflow off, into a runs.db in a temporary directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from esper.experiment.loading import load
from esper.leyline.events import TelemetryEventType as T
from esper.registry import RunStatus
from tests.simic.probes.probe_runs import Recorded

EXPERIMENTS = Path(__file__).parents[2] / "experiments"
RATIO = (T.RATIO_EXPLOSION_DETECTED, T.RATIO_COLLAPSE_DETECTED)
TRENDS = (T.PLATEAU_DETECTED, T.DEGRADATION_DETECTED, T.IMPROVEMENT_DETECTED)
PPO_DETECTORS = (*RATIO, T.VALUE_COLLAPSE_DETECTED, T.NUMERICAL_INSTABILITY_DETECTED,
                 T.GRADIENT_PATHOLOGY_DETECTED, T.LSTM_HEALTH_WARNING)
ENV_DETECTORS = (*TRENDS, T.MEMORY_WARNING, T.REWARD_HACKING_SUSPECTED)


def _stock(name: str, tmp_path_factory) -> Recorded:
    spec = load(EXPERIMENTS / f"{name}.yaml", overrides=("tracking.mlflow=false",))
    recorded = Recorded(spec, tmp_path_factory.mktemp(name) / "runs.db")
    assert recorded.result.record.status is RunStatus.FINISHED
    return recorded


@pytest.fixture(scope="module")
def p4(tmp_path_factory) -> Recorded:
    return _stock("p4_monitoring", tmp_path_factory)


@pytest.fixture(scope="module")
def wiring(tmp_path_factory) -> Recorded:
    return _stock("telemetry_wiring", tmp_path_factory)


def _expected_trends(recorded: Recorded) -> list[tuple[int, T]]:
    """The verdict of each batch from its recorded accuracies and the run's thresholds: a
    degradation, else an improvement, else a plateau (one per batch)."""
    o = recorded.spec.telemetry.trends
    means = [e.data.mean_val_accuracy for e in recorded.of(T.BATCH_COMPLETED)]
    verdicts = []
    for batch in range(2 * o.window - 1, len(means)):
        recent = sum(means[batch - o.window + 1:batch + 1]) / o.window
        older = sum(means[batch - 2 * o.window + 1:batch - o.window + 1]) / o.window
        delta = recent - older
        if delta < o.degradation:
            verdicts.append((batch, T.DEGRADATION_DETECTED))
        elif delta > o.improvement:
            verdicts.append((batch, T.IMPROVEMENT_DETECTED))
        elif abs(delta) < o.plateau:
            verdicts.append((batch, T.PLATEAU_DETECTED))
    return verdicts


def test_p4_monitoring_plateaus_at_its_own_thresholds(p4):
    """Its host saturates (~97% on digits): batches 2-3 against 0-1 differ by less than 0.5."""
    recorded = [(e.batch, e.event_type) for e in p4.of(*TRENDS)]
    assert recorded == _expected_trends(p4)
    assert (3, T.PLATEAU_DETECTED) in recorded
    assert all(abs(e.data.delta) < 0.5 and e.data.window == 2 for e in p4.of(T.PLATEAU_DETECTED))


def test_p4_monitoring_ratio_moves_but_stays_within_its_bounds_silently(p4):
    o = p4.spec.telemetry.anomalies
    assert (o.ratio_max, o.ratio_min) == (5.0, 0.1)
    assert any(u.ratio_max - u.ratio_min > 1e-2 for u in p4.updates)  # four update epochs
    assert all(o.ratio_min <= u.ratio_min and u.ratio_max <= o.ratio_max for u in p4.updates)
    assert p4.of(*RATIO) == []


def test_p4_monitoring_is_silent_on_gradients_numerics_and_the_lstm(p4):
    threshold = p4.spec.telemetry.gradient_drift.threshold
    assert all(u.gradient_norm_drift <= threshold and u.gradient_health_drift <= threshold
               for u in p4.updates)
    assert all(u.lstm_has_nan is False and u.lstm_has_inf is False for u in p4.updates)
    assert p4.of(T.GRADIENT_PATHOLOGY_DETECTED, T.NUMERICAL_INSTABILITY_DETECTED,
                 T.LSTM_HEALTH_WARNING) == []


def test_p4_monitoring_value_collapse_is_its_young_critic_never_its_value_loss(p4):
    """At p4's own thresholds the value-loss rule stays silent (scale-free bound), while the
    explained-variance rule fires exactly on the updates after the warm-up whose critic explains
    less than 10% of the returns' variance (a critic of 3 updates, on ~30 samples each)."""
    o = p4.spec.telemetry.anomalies
    expected = [b for b, u in enumerate(p4.updates)
                if b >= o.warmup_batches and u.explained_variance < o.min_explained_variance]
    events = p4.of(T.VALUE_COLLAPSE_DETECTED)
    assert [e.batch for e in events] == expected
    assert all("value_loss" not in e.data.detail for e in events)
    assert all(u.value_loss <= o.max_value_loss * (u.return_mean ** 2 + u.return_std ** 2)
               for u in p4.updates)


def test_telemetry_wiring_a_healthy_run_with_every_probe_raises_no_detector(wiring):
    """Every probe at its default thresholds: the ratio moves, the diagnostics snapshot the hosts
    (no red flag), memory is measured; nothing is detected. No seed of this run reaches BLENDING,
    so REWARD_HACKING_SUSPECTED has no chance here (see test_reward_hacking.py for a run where
    it has), and with 3 batches the value-collapse warm-up (3) and trend windows (5) never end."""
    assert any(u.ratio_max - u.ratio_min > 1e-2 for u in wiring.updates)
    snapshots = wiring.of(T.ANALYTICS_SNAPSHOT)
    assert snapshots and all(e.data.red_flags == () for e in snapshots)
    assert all(e.data.rss_mb is not None for e in wiring.of(T.BATCH_COMPLETED))
    assert wiring.of(*PPO_DETECTORS, *ENV_DETECTORS) == []
