"""A trial's value over its replicates: a NaN replicate is not averaged away."""

import math

from esper.sweep.ranking import RankedTrial, trial_value


def test_a_trial_value_is_the_mean_of_the_replicates_that_measured_it():
    assert trial_value([80.0, None, 90.0]) == 85.0
    assert trial_value([None, None]) is None and trial_value([]) is None


def test_a_replicate_that_measured_nan_makes_the_trial_nan_and_unranked():
    # the mean of the others would rank a trial whose replicate diverged as if it had not
    value = trial_value([80.0, math.nan, 90.0])
    assert math.isnan(value)
    assert not RankedTrial(0, {}, (), value).ranked
    assert RankedTrial(1, {}, (), 85.0).ranked and not RankedTrial(2, {}, (), None).ranked
