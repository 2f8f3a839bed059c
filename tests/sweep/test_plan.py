"""plan_trials: the trials of a sweep, before anything runs."""

from __future__ import annotations

import pytest

from esper.leyline.errors import SpecError
from esper.sweep.errors import SweepError
from esper.sweep.plan import plan_trials, with_grid
from tests.spec_factory import tiny_spec


def test_replicates_of_a_sweep_over_the_seed_start_from_the_trial_seed():
    """Replicate r of a trial ran the experiment's seed + r whatever the trial's seed: with
    `seed` swept over 5 and 9, both trials' second replicates ran seed 2."""
    spec = tiny_spec(seed=1, training={"envs": 1, "batches": 1, "episode_length": 3,
                                       "replicates": 2},
                     sweep={"method": "grid", "parameters": {"seed": {"values": [5, 9]}},
                            "metric": "final_val_accuracy", "goal": "maximize"})
    assert [(t.label, t.params, t.spec.seed) for t in plan_trials(spec)] == [
        ("t0-r0", {"seed": 5}, 5), ("t0-r1", {"seed": 5}, 6),
        ("t1-r0", {"seed": 9}, 9), ("t1-r1", {"seed": 9}, 10)]


def test_replicates_of_other_sweeps_run_seed_to_seed_plus_n_minus_one():
    spec = tiny_spec(seed=4, training={"envs": 1, "batches": 1, "episode_length": 3,
                                       "replicates": 3},
                     sweep={"method": "grid", "parameters": {"host.lr": {"values": [0.1]}},
                            "metric": "final_val_accuracy", "goal": "maximize"})
    trials = plan_trials(spec)
    assert [t.spec.seed for t in trials] == [4, 5, 6]
    assert {t.spec.training.replicates for t in trials} == {1}


def test_a_sweep_over_the_replicates_is_refused():
    """It was planned and ignored: each trial ran the experiment's replicates while its
    parameter said 1 or 3. The loader refuses it, so esper validate does too."""
    with pytest.raises(SpecError, match=r"sweep\.parameters\.training\.replicates: the "
                                        r"replicates are the same for every trial \(expected "
                                        r"training\.replicates: N child runs per trial\)"):
        tiny_spec(training={"envs": 1, "batches": 1, "episode_length": 3, "replicates": 2},
                  sweep={"method": "grid",
                         "parameters": {"training.replicates": {"values": [1, 3]}},
                         "metric": "final_val_accuracy", "goal": "maximize"})


def test_grid_values_are_checked_like_the_file_and_named_by_their_option():
    with pytest.raises(SpecError) as raised:
        with_grid(tiny_spec(), ("host.lrr=1,2", "training.envs=2,x"))
    assert [(p.source, p.path) for p in raised.value.problems] == [
        ("--grid host.lrr=1,2 training.envs=2,x", "sweep.parameters.host.lrr"),
        ("--grid host.lrr=1,2 training.envs=2,x", "sweep.parameters.training.envs.values[1]")]


def test_grid_values_are_read_as_experiment_files_read_numbers():
    # YAML 1.1 reads 1e-3 as text ("expected a number") and 010 as 8
    spec = with_grid(tiny_spec(), ("ppo.lr=1e-3,3e-4", "host.n_blocks=2,3"))
    assert spec.sweep.parameters["ppo.lr"].values == (1e-3, 3e-4)
    assert spec.sweep.parameters["host.n_blocks"].values == (2, 3)
    with pytest.raises(SweepError, match=r"--grid seed=010,\[: the values are not YAML"):
        with_grid(tiny_spec(), ("seed=010,[",))
