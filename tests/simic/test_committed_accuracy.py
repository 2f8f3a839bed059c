"""Committed and host-only accuracy in real runs: measured every epoch, and for the model at the
episode's end even when its last action fossilised a seed."""

from __future__ import annotations

from dataclasses import replace

from esper.experiment.runner import run
from esper.leyline.events import TelemetryEventType as T
from esper.registry import Registry
from tests.growing_spec import growing_spec


def recorded(tmp_path, spec, name: str) -> list:
    result = run(spec, registry=tmp_path / f"{name}.db")
    with Registry.open(tmp_path / f"{name}.db") as registry:
        return list(registry.events(result.record.run_id,
                                    types=[T.EPOCH_COMPLETED, T.EPISODE_OUTCOME]))


def test_every_epoch_measures_the_committed_model_and_the_host_alone(tmp_path):
    events = recorded(tmp_path, growing_spec(), "grow")
    epochs = [e.data for e in events if e.event_type is T.EPOCH_COMPLETED]
    assert all(0 <= e.committed_accuracy <= 100 and 0 <= e.host_accuracy <= 100 for e in epochs)
    bare = [e for e in epochs if e.seeds_live == 0 and e.seeds_fossilized == 0]
    assert bare and all(e.committed_accuracy == e.host_accuracy == e.val_accuracy for e in bare)
    kept = [e for e in epochs if e.seeds_fossilized and not e.seeds_live]
    assert kept and all(e.committed_accuracy == e.val_accuracy for e in kept)
    assert any(e.host_accuracy != e.val_accuracy for e in kept)  # the fossil changes the model


def test_a_last_step_fossilisation_is_in_the_episodes_committed_accuracy(tmp_path):
    spec = growing_spec()
    events = recorded(tmp_path, spec, "grow")
    fossilized_at = next(e.epoch for e in events if e.event_type is T.EPOCH_COMPLETED
                         and e.env_id == 0 and e.data.action == "FOSSILIZE"
                         and e.data.action_success)
    # the same run, ending on the epoch whose action fossilises env 0's seed
    short = replace(spec, training=replace(spec.training, episode_length=fossilized_at + 1))
    events = recorded(tmp_path, short, "short")
    last = next(e.data for e in reversed(events)
                if e.event_type is T.EPOCH_COMPLETED and e.env_id == 0)
    outcome = next(e.data for e in events if e.event_type is T.EPISODE_OUTCOME and e.env_id == 0)
    assert last.action == "FOSSILIZE" and last.seeds_live == 1 and last.seeds_fossilized == 0
    assert last.committed_accuracy == last.host_accuracy != last.val_accuracy
    # fossilising changes no weight: the kept model is the validated one, the seed now on
    assert outcome.seeds_fossilized == 1
    assert outcome.committed_accuracy == last.val_accuracy
    assert outcome.host_accuracy == last.host_accuracy
