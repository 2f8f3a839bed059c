"""Rewards in a real run are computed on the state before the chosen action (docs/pipeline.md
section 6): the parameter rent of a step is that of the seeds there were when it was chosen."""

from __future__ import annotations

from esper.experiment.runner import run
from esper.leyline.events import TelemetryEventType as T
from esper.registry import Registry
from tests.growing_spec import growing_spec


def test_a_germinate_step_pays_no_rent_for_the_seed_it_creates(tmp_path):
    result = run(growing_spec(reward={"mode": "shaped"}), registry=tmp_path / "runs.db")
    with Registry.open(tmp_path / "runs.db") as registry:
        steps = [e for e in registry.events(result.record.run_id, types=[T.EPOCH_COMPLETED])]
    for env_id in (0, 1):
        env_steps = [e.data for e in steps if e.env_id == env_id]
        first = next(i for i, step in enumerate(env_steps) if step.action == "GERMINATE")
        assert env_steps[first].action_success
        assert env_steps[first].reward_components.param_rent == 0.0  # no seed before it
        assert env_steps[first + 1].reward_components.param_rent < 0.0  # the seed's rent
