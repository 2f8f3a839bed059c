"""The governor's snapshots in a real run: one after each fossilization (PIPELINE.md section 6),
whichever way the seed was fossilized."""

from __future__ import annotations

from dataclasses import replace

from esper.experiment.runner import run
from esper.leyline.events import TelemetryEventType as T
from esper.registry import Registry
from esper.tolaria.governor import Governor
from tests.growing_spec import growing_spec


def test_a_seed_fossilized_by_g5_auto_forward_is_snapshotted_at_once(tmp_path, monkeypatch):
    # Without it, the fossil reached a snapshot only at the next epoch's end: a rollback in
    # that epoch restored a snapshot without it and left the fossil's weights as trained.
    snapshots: list[tuple[int, set[str]]] = []
    take_snapshot = Governor.snapshot

    def recorded(self, model, host_optimizer, epoch):
        snapshot = take_snapshot(self, model, host_optimizer, epoch)
        snapshots.append((epoch, set(snapshot.fossilized_seeds)))
        return snapshot

    monkeypatch.setattr(Governor, "snapshot", recorded)
    spec = growing_spec(gates={"G2": {"min_training_epochs": 2, "min_gradient_health": 0.3},
                               "auto_forward": ["G1", "G2", "G3", "G5"]})
    # the heuristic neither fossilizes (its FOSSILIZE snapshots by itself) nor prunes in HOLDING
    spec = replace(spec, policy=replace(spec.policy, heuristic=replace(
        spec.policy.heuristic, fossilize_min_contribution=1_000.0)),
        slots=replace(spec.slots, min_prune_age=1_000))
    result = run(spec, registry=tmp_path / "runs.db")
    with Registry.open(tmp_path / "runs.db") as registry:
        fossilized = list(registry.events(result.record.run_id, types=[T.SEED_FOSSILIZED]))
    assert fossilized and all(e.message == "G5 passed" for e in fossilized)
    for event in fossilized:  # the snapshot counts completed epochs: the event's epoch + 1
        assert (event.epoch + 1, {event.slot_id}) in snapshots
