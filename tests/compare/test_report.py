"""compare() on real runs: config diff, deltas, lifecycle counts, divergence, statistics."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from itertools import zip_longest

import pytest

from esper.compare.divergence import first_divergence
from esper.compare.outcomes import outcome_metrics
from esper.compare.refs import CompareError
from esper.compare.report import compare
from esper.compare.statistics import group_statistics
from esper.leyline.events import TelemetryEventType
from esper.registry import RunNotFound

T = TelemetryEventType
LIFECYCLE = {T.SEED_GERMINATED: "germinated", T.SEED_FOSSILIZED: "fossilized",
             T.SEED_PRUNED: "pruned"}


def test_config_diff_shows_only_the_keys_that_differ(runs):
    with runs.open() as registry:
        runs_pair = compare(registry, [runs.first.run_id, runs.second.run_id])
        groups = compare(registry, [f"group:{runs.group_a}", f"group:{runs.group_b}"])
        everything = compare(registry, [runs.first.run_id, runs.second.run_id], show_all=True)
    assert [(r.key, r.values) for r in runs_pair.config] == [("seed", [1, 2])]
    assert [(r.key, r.values) for r in groups.config] == [("gates.auto_forward", [[], ["G1"]])]
    assert len(everything.config) > 20 and "training.envs" in {r.key for r in everything.config}


def test_metric_deltas_are_against_the_first_side(runs):
    with runs.open() as registry:
        comparison = compare(registry, [runs.first.run_id, runs.second.run_id])
        a = outcome_metrics(registry, runs.first.run_id)
        b = outcome_metrics(registry, runs.second.run_id)
    rows = {row.name: row for row in comparison.metrics}
    accuracy = rows["final_val_accuracy"]
    assert accuracy.values == [a["final_val_accuracy"], b["final_val_accuracy"]]
    delta = b["final_val_accuracy"] - a["final_val_accuracy"]
    assert accuracy.deltas == [None, pytest.approx(delta)]
    assert accuracy.delta_pcts[1] == pytest.approx(100 * delta / a["final_val_accuracy"])
    assert "final_policy_loss" not in rows  # measured by neither side: nothing to say


def test_lifecycle_counts_per_blueprint_and_gate_check_match_the_events(runs):
    with runs.open() as registry:
        comparison = compare(registry, [runs.first.run_id, runs.second.run_id], show_all=True)
        expected = []
        for run_id in (runs.first.run_id, runs.second.run_id):
            counts: Counter[str] = Counter()
            for event in registry.events(run_id):
                if event.event_type in LIFECYCLE:
                    counts[f"{LIFECYCLE[event.event_type]} {event.data.blueprint}"] += 1
                elif event.event_type is T.SEED_GATE_EVALUATED:
                    counts.update(f"gate failure {check}" for check in event.data.checks_failed)
            expected.append(counts)
    shown = {row.key: row.values for row in comparison.lifecycle}
    assert shown == {key: [expected[0][key], expected[1][key]]
                     for key in set(expected[0]) | set(expected[1])}
    assert any(key.startswith("germinated") for key in shown)
    assert any(key.startswith("gate failure") for key in shown)


def test_group_sides_show_means_and_statistics_that_match_scipy(runs):
    with runs.open() as registry:
        comparison = compare(registry, [f"group:{runs.group_a}", f"group:{runs.group_b}"])
        a = [outcome_metrics(registry, r.run_id) for r in (runs.first, runs.second)]
        members_b = [row[0] for row in registry.query(
            "SELECT run_id FROM runs WHERE group_id = ? ORDER BY seed", [runs.group_b])]
        b = [outcome_metrics(registry, run_id) for run_id in members_b]
    stats = {row.metric: row.stats for row in comparison.statistics}["final_val_accuracy"]
    expected = group_statistics([m["final_val_accuracy"] for m in a],
                                [m["final_val_accuracy"] for m in b])
    assert stats == expected and stats.n_a == stats.n_b == 2
    row = {r.name: r for r in comparison.metrics}["final_val_accuracy"]
    assert row.values[0] == pytest.approx(sum(m["final_val_accuracy"] for m in a) / 2)


def test_a_single_run_against_a_group_says_there_are_too_few_runs(runs):
    with runs.open() as registry:
        comparison = compare(registry, [runs.twin.run_id, f"group:{runs.group_b}"])
    assert {row.metric for row in comparison.statistics} >= {"final_val_accuracy"}
    for row in comparison.statistics:
        assert row.side == 1 and (row.stats.n_a, row.stats.n_b) == (1, 2)
        assert row.stats.p_value is None and row.stats.ci_low is None
        assert "too few runs for statistics" in row.stats.note


def test_same_config_and_seed_gives_identical_event_streams(runs):
    with runs.open() as registry:
        comparison = compare(registry, [runs.first.run_id, runs.twin.run_id])
    (divergence,) = comparison.divergence
    assert divergence.identical and divergence.seq is None
    assert divergence.events_a == divergence.events_b == runs.first.event_count


def _first_difference_the_slow_way(registry, run_a: str, run_b: str):
    """Decode both streams and walk them; wall-clock fields (ts, step_time_ms, fps, ...) are
    blanked with the payload's own dataclass replace."""
    def comparable(event):
        data = event.data
        if event.event_type is T.THROUGHPUT_MEASURED:
            data = replace(data, step_time_ms=0.0, dataloader_wait_ms=0.0, fps=0.0)
        return event._replace(run_id="", ts=0.0, data=data)

    for a, b in zip_longest(registry.events(run_a), registry.events(run_b)):
        if a is None or b is None or comparable(a) != comparable(b):
            return a, b  # None: that stream has ended
    raise AssertionError("the streams do not differ")


@pytest.mark.parametrize("other", ["second", "member_b"])
def test_a_perturbed_run_gives_the_first_divergence_and_its_fields(runs, other):
    with runs.open() as registry:
        other_id = runs.second.run_id if other == "second" else registry.query(
            "SELECT run_id FROM runs WHERE group_id = ? AND seed = 1", [runs.group_b])[0][0]
        divergence = first_divergence(registry, runs.first.run_id, other_id)
        a, b = _first_difference_the_slow_way(registry, runs.first.run_id, other_id)
    assert not divergence.identical and divergence.seq == (a or b).seq
    assert (divergence.event_type_a, divergence.event_type_b) == (
        a and a.event_type.value, b and b.event_type.value)
    named = {f.field: (f.a, f.b) for f in divergence.fields}
    assert named
    for name, (value_a, value_b) in named.items():
        if name.startswith("data."):
            assert not name.endswith(("step_time_ms", "fps", "dataloader_wait_ms"))
        elif a is not None and b is not None and name != "event_type":
            assert (getattr(a, name), getattr(b, name)) == (value_a, value_b)
    if other == "second":  # the seed is in the first event
        assert divergence.seq == 0 and named == {"data.seed": (1, 2)}
    else:  # auto-forward G1: the same until a seed reaches G1
        assert divergence.seq > 0


def test_bad_references_are_clear_errors(runs):
    with runs.open() as registry:
        with pytest.raises(CompareError, match="at least two runs or groups, got 1"):
            compare(registry, [runs.first.run_id])
        with pytest.raises(CompareError, match="no replicate group 'ffff' in .*latest groups: "):
            compare(registry, [runs.first.run_id, "group:ffff"])
        with pytest.raises(RunNotFound, match="no run matches 'nope'"):
            compare(registry, [runs.first.run_id, "nope"])
