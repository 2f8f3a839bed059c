"""`esper run` end to end: real training on digits, recorded to a real runs.db."""

import math
from collections import Counter

import pytest

from esper.experiment.runner import run
from esper.leyline.events import TelemetryEventType as T
from esper.registry import Registry, RunStatus
from esper.tolaria.host_step import run_epoch
from esper.tolaria.stacked_step import run_epoch_stacked
from tests.growing_spec import growing_spec

CORE = {T.TRAINING_STARTED, T.EPOCH_COMPLETED, T.BATCH_COMPLETED, T.SEED_GERMINATED,
        T.SEED_STAGE_CHANGED, T.SEED_FOSSILIZED, T.EPISODE_OUTCOME, T.RUN_FINISHED}


@pytest.fixture(scope="module")
def grown(tmp_path_factory):
    path = tmp_path_factory.mktemp("run") / "runs.db"
    result = run(growing_spec(), registry=path)
    with Registry.open(path) as registry:
        events = list(registry.events(result.record.run_id))
    return result, events


def test_a_run_grows_seeds_through_their_gates_and_records_everything(grown):
    result, events = grown
    assert result.record.status is RunStatus.FINISHED
    assert [e.seq for e in events] == list(range(len(events)))  # no gap: nothing lost
    assert result.record.event_count == len(events)
    types = Counter(e.event_type for e in events)
    assert CORE <= set(types), f"missing core events: {CORE - set(types)}"
    assert types[T.EPOCH_COMPLETED] == 2 * 14
    assert result.summary.seeds_fossilized >= 1
    stages = [e.data.to_stage for e in events if e.event_type is T.SEED_STAGE_CHANGED]
    assert {"GERMINATED", "TRAINING", "BLENDING", "HOLDING", "FOSSILIZED"} <= set(stages)


def test_gates_are_recorded_pass_and_fail_with_named_checks(grown):
    _, events = grown
    gates = [e.data for e in events if e.event_type is T.SEED_GATE_EVALUATED]
    assert any(g.passed and g.gate == "G5" for g in gates)
    failed = [g for g in gates if not g.passed]
    assert failed and all(g.checks_failed for g in failed)
    assert "epochs_in_stage_below_min" in {c for g in failed for c in g.checks_failed}
    gate_events = [e for e in events if e.event_type is T.SEED_GATE_EVALUATED]
    assert all(e.data.message and e.data.message == e.message for e in gate_events)


def test_every_step_records_its_action_and_reward_components(grown):
    _, events = grown
    epochs = [e.data for e in events if e.event_type is T.EPOCH_COMPLETED]
    assert {"GERMINATE", "ADVANCE", "FOSSILIZE"} <= {p.action for p in epochs}
    for payload in epochs:
        assert payload.reward == pytest.approx(payload.reward_components.total)
    outcomes = [e.data for e in events if e.event_type is T.EPISODE_OUTCOME]
    returns = {e.env_id: 0.0 for e in events if e.event_type is T.EPISODE_OUTCOME}
    for event in events:
        if event.event_type is T.EPOCH_COMPLETED:
            returns[event.env_id] += event.data.reward
    assert [o.episode_reward for o in outcomes] == pytest.approx(list(returns.values()))


def test_slot_health_fields_are_measured_on_stage_changes_after_training(grown):
    _, events = grown
    blending = [e.data for e in events
                if e.event_type is T.SEED_STAGE_CHANGED and e.data.to_stage == "BLENDING"]
    assert blending and all(p.gradient_health is not None for p in blending)
    germinated = [e.data for e in events
                  if e.event_type is T.SEED_STAGE_CHANGED and e.data.to_stage == "GERMINATED"]
    assert all(p.gradient_health is None for p in germinated)  # not measured yet: None, not 0


def _stream(events):
    return [(e.seq, e.event_type, e.batch, e.env_id, e.epoch, e.seed_id, e.slot_id, e.message,
             e.data) for e in events if e.event_type is not T.RUN_FINISHED]


def test_same_experiment_and_seed_give_the_same_event_stream(grown, tmp_path):
    first, first_events = grown
    second = run(growing_spec(), registry=tmp_path / "runs.db")
    with Registry.open(tmp_path / "runs.db") as registry:
        second_events = list(registry.events(second.record.run_id))
    assert _stream(first_events) == _stream(second_events)


def _nan_val_loss(result):
    return type(result)(**{**result.__dict__, "val_loss": float("nan")})


def test_governor_rolls_back_an_injected_nan_loss_and_the_run_goes_on(tmp_path, monkeypatch):
    def nan_at_epoch_3(model, optimizer, data, schedule, epoch, env_id, grad_clip, **kwargs):
        result = run_epoch(model, optimizer, data, schedule, epoch, env_id, grad_clip, **kwargs)
        return _nan_val_loss(result) if epoch == 3 and env_id == 0 else result

    def stacked_nan_at_epoch_3(stack, optimizers, data, schedule, epoch, grad_clip, **kwargs):
        results = run_epoch_stacked(stack, optimizers, data, schedule, epoch, grad_clip, **kwargs)
        return [_nan_val_loss(r) if epoch == 3 and m == 0 else r for m, r in enumerate(results)]

    monkeypatch.setattr("esper.simic.env_loop.run_epoch", nan_at_epoch_3)  # per-env steps
    monkeypatch.setattr("esper.simic.env_loop.run_epoch_stacked", stacked_nan_at_epoch_3)
    result = run(growing_spec(), registry=tmp_path / "runs.db")
    with Registry.open(tmp_path / "runs.db") as registry:
        events = list(registry.events(result.record.run_id))
    rollbacks = [e for e in events if e.event_type is T.GOVERNOR_ROLLBACK]
    assert [(e.env_id, e.epoch, e.data.reason) for e in rollbacks] == [(0, 3, "nan_loss")]
    assert math.isnan(rollbacks[0].data.val_loss)  # measured NaN, not None ("not measured")
    assert result.record.status is RunStatus.FINISHED
    step = next(e for e in events if e.event_type is T.EPOCH_COMPLETED
                and (e.env_id, e.epoch) == (0, 3))
    assert step.data.reward_components.governor == -10.0
    later = [e for e in events if e.event_type is T.EPOCH_COMPLETED and e.epoch > 3]
    assert len(later) == 2 * 10  # both envs trained to the end of the episode
