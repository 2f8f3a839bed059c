"""training.replicates: `esper run` runs seeds seed..seed+N-1 as one group."""

from __future__ import annotations

import pytest

from esper.compare.refs import CompareError, resolve_side
from esper.registry import NewRun, Registry


def test_esper_run_with_replicates_runs_each_seed_under_one_group_id(runs):
    with runs.open() as registry:
        side = resolve_side(registry, f"group:{runs.group_a}")
        twin_group = registry.run(runs.twin.run_id).group_id
    assert [run.seed for run in side.runs] == [1, 2]
    assert {run.group_id for run in side.runs} == {runs.group_a}
    assert [run.run_id for run in side.runs] == [runs.first.run_id, runs.second.run_id]
    assert twin_group is None  # a plain run belongs to no group


def test_a_group_is_found_by_a_unique_prefix_of_its_id(runs):
    with runs.open() as registry:
        side = resolve_side(registry, f"group:{runs.group_b[:6]}")
    assert side.group_id == runs.group_b and len(side.runs) == 2


def test_named_replicates_are_suffixed_with_their_index(runs):
    with runs.open() as registry:
        side = resolve_side(registry, f"group:{runs.group_b}")
    assert [(run.name, run.seed) for run in side.runs] == [("cmp-b-r0", 1), ("cmp-b-r1", 2)]


def test_the_trials_of_a_sweep_are_not_taken_for_a_replicate_group(tmp_path):
    # a sweep's trials share its run id as group id, but differ in config: their mean, std
    # and t-test would compare a mixture of configurations
    with Registry.open(tmp_path / "runs.db") as registry:
        sweep = registry.create_run(NewRun(experiment="sw", config={}, seed=0))
        for lr in (0.01, 0.1):
            registry.create_run(NewRun(experiment="sw", config={"host": {"lr": lr}}, seed=0,
                                       group_id=sweep.run_id, parent_run_id=sweep.run_id))
        with pytest.raises(CompareError, match=f"names the trials of sweep {sweep.run_id}.*"
                                               f"esper compare sweep:{sweep.run_id}"):
            resolve_side(registry, f"group:{sweep.run_id}")
