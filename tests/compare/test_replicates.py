"""training.replicates: `esper run` runs seeds seed..seed+N-1 as one group."""

from __future__ import annotations

from esper.compare.refs import resolve_side


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
