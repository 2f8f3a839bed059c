"""outcome_metrics and the metrics table, checked against the decoded events of real runs."""

from __future__ import annotations

import math

import pytest

from esper.compare.outcomes import OUTCOME_METRICS, outcome_metrics
from esper.leyline.events import (
    BatchCompletedPayload,
    EpochCompletedPayload,
    TelemetryEventType,
    TrainingStartedPayload,
)
from esper.leyline.rewards import RewardComponents
from esper.nissa.metric_series import MetricMapper
from esper.nissa.recording import RunTerminated, recording
from esper.registry import NewRun, Registry, RunStatus

T = TelemetryEventType


def test_outcome_metrics_agree_with_the_decoded_events(runs):
    with runs.open() as registry:
        metrics = outcome_metrics(registry, runs.first.run_id)
        events = list(registry.events(runs.first.run_id))
        run = registry.run(runs.first.run_id)
    of = lambda kind: [e for e in events if e.event_type is kind]  # noqa: E731
    batches, epochs = of(T.BATCH_COMPLETED), of(T.EPOCH_COMPLETED)
    assert list(metrics) == list(OUTCOME_METRICS)
    assert metrics["final_val_accuracy"] == batches[-1].data.mean_val_accuracy
    assert metrics["best_val_accuracy"] == max(e.data.mean_val_accuracy for e in batches)
    assert metrics["final_committed_accuracy"] == batches[-1].data.mean_committed_accuracy
    assert metrics["final_host_accuracy"] == batches[-1].data.mean_host_accuracy
    for batch in batches:  # each batch's means are its episodes' committed and host accuracy
        outcomes = [e.data for e in of(T.EPISODE_OUTCOME) if e.batch == batch.batch]
        assert batch.data.mean_committed_accuracy == pytest.approx(
            sum(o.committed_accuracy for o in outcomes) / len(outcomes))
        assert batch.data.mean_host_accuracy == pytest.approx(
            sum(o.host_accuracy for o in outcomes) / len(outcomes))
    assert metrics["mean_episode_return"] == pytest.approx(
        sum(e.data.mean_episode_return for e in batches) / len(batches))
    assert metrics["seeds_germinated"] == len(of(T.SEED_GERMINATED)) > 0
    assert metrics["seeds_fossilized"] == len(of(T.SEED_FOSSILIZED))
    assert metrics["seeds_pruned"] == len(of(T.SEED_PRUNED))
    assert metrics["governor_rollbacks"] == len(of(T.GOVERNOR_ROLLBACK))
    assert metrics["params_added"] == sum(e.data.params for e in of(T.SEED_FOSSILIZED))
    assert metrics["wall_time_s"] == run.duration > 0
    assert metrics["env_epochs_per_s"] == pytest.approx(len(epochs) / run.duration)
    # a random policy runs no PPO update: not measured, not zero
    assert metrics["final_policy_loss"] is None and metrics["final_entropy"] is None


def test_every_recorded_run_has_the_metric_series_of_its_events(runs):
    with runs.open() as registry:
        for run_id in (runs.first.run_id, runs.twin.run_id):
            stored = registry.query(
                "SELECT key, step, value, ts FROM metrics WHERE run_id = ? ORDER BY rowid",
                [run_id])
            expected = MetricMapper().points(registry.events(run_id))
            assert stored == [tuple(point) for point in expected] and stored


def _epoch(accuracy: float) -> EpochCompletedPayload:
    return EpochCompletedPayload(1.0, accuracy, 1.5, accuracy, 0, 0, (), "WAIT", None, True, 0.25,
                                 RewardComponents(0.25, 0.0, 0.0, 0.0))


def _record(registry: Registry, body) -> str:
    with recording(registry, NewRun(experiment="m", config={}, seed=0)) as rec:
        rec.hub.emit(T.TRAINING_STARTED, TrainingStartedPayload("m", 0, 1, 1, 2, "random", ()))
        rec.hub.emit(T.EPOCH_COMPLETED, _epoch(40.0), batch=0, env_id=0, epoch=0)
        rec.hub.emit(T.EPOCH_COMPLETED, _epoch(math.nan), batch=0, env_id=0, epoch=1)
        rec.hub.emit(T.BATCH_COMPLETED, BatchCompletedPayload(40.0, 0.5, 1), batch=0)
        body()
    return rec.run_id


def _raise(error: BaseException):
    def body() -> None:
        raise error
    return body


@pytest.mark.parametrize("body, status", [
    (lambda: None, RunStatus.FINISHED),
    (_raise(RuntimeError("boom")), RunStatus.FAILED),
    (_raise(KeyboardInterrupt()), RunStatus.KILLED),
    (_raise(RunTerminated(15)), RunStatus.KILLED),
])
def test_finished_failed_and_killed_runs_all_get_their_metrics(tmp_path, body, status):
    with Registry.open(tmp_path / "runs.db") as registry:
        try:
            run_id = _record(registry, body)
        except (RuntimeError, KeyboardInterrupt, RunTerminated):
            run_id = registry.runs()[0].run_id
        assert registry.run(run_id).status is status
        stored = {(key, step): value for key, step, value in registry.query(
            "SELECT key, step, value FROM metrics WHERE run_id = ?", [run_id])}
        metrics = outcome_metrics(registry, run_id)
    assert stored[("env0/val_accuracy", 0)] == 40.0
    assert stored[("env0/val_accuracy", 1)] is None  # SQLite keeps a NaN as NULL
    assert stored[("episode/val_accuracy", 0)] == 40.0
    assert metrics["final_val_accuracy"] == 40.0
    assert metrics["best_val_accuracy"] == 40.0
    assert metrics["final_policy_loss"] is None and metrics["seeds_germinated"] == 0


def test_a_nan_episode_return_makes_the_mean_return_nan(tmp_path):
    """SQLite keeps a NaN as NULL and avg() skips NULLs: the mean over the batches was the mean
    of the others, and a NaN return passed a regression rule unseen."""
    with Registry.open(tmp_path / "runs.db") as registry:
        with recording(registry, NewRun(experiment="m", config={}, seed=0)) as rec:
            rec.hub.emit(T.TRAINING_STARTED,
                         TrainingStartedPayload("m", 0, 1, 2, 2, "random", ()))
            rec.hub.emit(T.BATCH_COMPLETED, BatchCompletedPayload(40.0, 0.5, 1), batch=0)
            rec.hub.emit(T.BATCH_COMPLETED, BatchCompletedPayload(40.0, math.nan, 1), batch=1)
        assert registry.query("SELECT step, value FROM metrics WHERE run_id = ? AND key = "
                              "'episode/return' ORDER BY step", [rec.run_id]) == [
            (0, 0.5), (1, None)]
        metrics = outcome_metrics(registry, rec.run_id)
    assert math.isnan(metrics["mean_episode_return"])
    assert metrics["best_val_accuracy"] == 40.0


def test_a_batchs_committed_and_host_accuracy_are_its_episodes_means(tmp_path):
    """A growing run that fossilises: the committed model and the host alone differ, so the two
    batch means cannot be swapped or fed from one source unnoticed."""
    from tests.simic.probes.env_runs import record_run

    recorded = record_run(tmp_path, [], training={"envs": 2, "batches": 1, "episode_length": 14})
    [batch] = recorded.of(T.BATCH_COMPLETED)
    outcomes = [e.data for e in recorded.of(T.EPISODE_OUTCOME)]
    assert recorded.of(T.SEED_FOSSILIZED)
    committed = sum(o.committed_accuracy for o in outcomes) / len(outcomes)
    host = sum(o.host_accuracy for o in outcomes) / len(outcomes)
    assert committed != host
    assert (batch.data.mean_committed_accuracy, batch.data.mean_host_accuracy) == (
        pytest.approx(committed), pytest.approx(host))


def test_named_outcome_metrics_compute_only_what_is_asked(runs, monkeypatch):
    """`esper runs -c final_val_accuracy` asks for one metric: it comes with the same value as
    in the full set, and nothing the others need (the run's event counts) is read."""
    with runs.open() as registry:
        every = outcome_metrics(registry, runs.first.run_id)

        def no_counting(*args):
            raise AssertionError("event counts read for a metric that does not need them")

        monkeypatch.setattr("esper.compare.outcomes.event_counts", no_counting)
        asked = outcome_metrics(registry, runs.first.run_id,
                                names=["final_val_accuracy", "wall_time_s"])
    assert asked == {"final_val_accuracy": every["final_val_accuracy"],
                     "wall_time_s": every["wall_time_s"]}
