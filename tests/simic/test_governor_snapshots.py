"""The governor's snapshots in a real run: one after each fossilization (docs/pipeline.md §6),
whichever way the seed was fossilized."""

from __future__ import annotations

from dataclasses import replace

import pytest

from esper.experiment.runner import run
from esper.leyline.events import TelemetryEventType as T
from esper.registry import Registry
from esper.tolaria.governor import Governor
from tests.growing_spec import growing_spec


def _auto_forward_g5(spec):
    """G5 in auto_forward, and a heuristic that neither fossilizes nor prunes in HOLDING."""
    spec = replace(spec, gates=replace(spec.gates, auto_forward=("G1", "G2", "G3", "G5")))
    return replace(spec, policy=replace(spec.policy, heuristic=replace(
        spec.policy.heuristic, fossilize_min_contribution=1_000.0)),
        slots=replace(spec.slots, min_prune_age=1_000))


@pytest.mark.parametrize("by", ["FOSSILIZE action", "G5 auto_forward"])
def test_a_fossilized_seed_is_snapshotted_at_once(tmp_path, monkeypatch, by):
    # Auto-forward fossils reached a snapshot only at the next epoch's end: a rollback in that
    # epoch restored a snapshot without them and kept the fossil's weights as trained.
    snapshots: list[tuple[int, set[str]]] = []
    take_snapshot = Governor.snapshot

    def recorded(self, model, host_optimizer, epoch):
        snapshot = take_snapshot(self, model, host_optimizer, epoch)
        snapshots.append((epoch, set(snapshot.fossilized_seeds)))
        return snapshot

    monkeypatch.setattr(Governor, "snapshot", recorded)
    spec = growing_spec()
    spec = _auto_forward_g5(spec) if by == "G5 auto_forward" else spec
    result = run(spec, registry=tmp_path / "runs.db")
    with Registry.open(tmp_path / "runs.db") as registry:
        run_id = result.record.run_id
        fossilized = list(registry.events(run_id, types=[T.SEED_FOSSILIZED]))
        actions = {(e.env_id, e.epoch): e.data.action
                   for e in registry.events(run_id, types=[T.EPOCH_COMPLETED])}
    assert fossilized
    for event in fossilized:  # the snapshot counts completed epochs: the event's epoch + 1
        assert (actions[event.env_id, event.epoch] == "FOSSILIZE") == (by == "FOSSILIZE action")
        assert (event.epoch + 1, {event.slot_id}) in snapshots
