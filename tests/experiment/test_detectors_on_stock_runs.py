"""The detectors of docs/pipeline.md §7 on the stock monitoring experiments, run as shipped, at
their own thresholds: what a healthy run provokes and what it leaves silent (issue 19).

p4_monitoring (PPO probes and trends, 2 envs x 4 batches x 15 epochs) and telemetry_wiring
(every probe but the profiler, 2 envs x 3 batches x 15 epochs), each once per module (~25 s and
~20 s on one core), MLflow off, into a runs.db in a temporary directory."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from esper.experiment.loading import load
from esper.leyline.events import TelemetryEventType as T
from esper.registry import RunStatus
from tests.simic.probes.probe_runs import Recorded
from tests.simic.probes.trend_verdicts import (expected_initiations, expected_trends,
                                              recorded_trends)

EXPERIMENTS = Path(__file__).parents[2] / "experiments"
RATIO = (T.RATIO_EXPLOSION_DETECTED, T.RATIO_COLLAPSE_DETECTED)
PPO_DETECTORS = (*RATIO, T.VALUE_COLLAPSE_DETECTED, T.NUMERICAL_INSTABILITY_DETECTED,
                 T.GRADIENT_PATHOLOGY_DETECTED, T.LSTM_HEALTH_WARNING)
ENV_DETECTORS = (T.DEGRADATION_DETECTED, T.MEMORY_WARNING, T.REWARD_HACKING_SUSPECTED)


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


def test_p4_monitoring_improves_then_plateaus_at_its_own_thresholds(p4):
    """Window 2 over each host's 15 epochs: the host climbs from chance (an improvement once two
    windows are full, at epoch 3) and saturates (~97% on digits: a plateau); it never degrades."""
    o = p4.spec.telemetry.trends
    expected, recorded = expected_trends(p4.events, o), recorded_trends(p4.events)
    assert [t[:4] for t in recorded] == [t[:4] for t in expected]
    kinds = Counter(t[3] for t in recorded)
    assert kinds[T.IMPROVEMENT_DETECTED] >= 8 and kinds[T.PLATEAU_DETECTED] >= 8
    assert kinds[T.DEGRADATION_DETECTED] == 0
    assert {(b, env, epoch) for b, env, epoch, kind, _ in recorded
            if kind is T.IMPROVEMENT_DETECTED and epoch == 3} == {
        (b, env, 3) for b in range(4) for env in range(2)}


def test_stock_hosts_never_stabilise_within_the_band_so_tamiyo_is_never_initiated(p4, wiring):
    """TAMIYO_INITIATED exactly when the epochs' val losses show a stabilisation at the run's
    band (-5%/+3% for 3 epochs): none on the stock runs, whose hosts' loss keeps falling faster
    or wobbles out of the band (test_trends.py provokes it with a looser band)."""
    for recorded in (p4, wiring):
        expected = expected_initiations(recorded.events, recorded.spec.signals)
        assert [(e.batch, e.env_id, e.epoch) for e in recorded.of(T.TAMIYO_INITIATED)] == expected
        assert expected == []


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
    it has), and with 3 batches the value-collapse warm-up (3) never ends. Each host improves
    (two windows of 5 epochs, +43 to +55 points) and never degrades."""
    assert any(u.ratio_max - u.ratio_min > 1e-2 for u in wiring.updates)
    snapshots = wiring.of(T.ANALYTICS_SNAPSHOT)
    assert snapshots and all(e.data.red_flags == () for e in snapshots)
    assert all(e.data.rss_mb is not None for e in wiring.of(T.BATCH_COMPLETED))
    assert wiring.of(*PPO_DETECTORS, *ENV_DETECTORS) == []
    trends = recorded_trends(wiring.events)
    assert [t[:4] for t in trends] == [t[:4] for t in expected_trends(
        wiring.events, wiring.spec.telemetry.trends)]
    assert {t[3] for t in trends} == {T.IMPROVEMENT_DETECTED}
