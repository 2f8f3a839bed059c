"""The learned policies' features of the committed model and the real gain."""

from __future__ import annotations

from esper.tamiyo.features import BASE_FEATURES, UNMEASURED, encode, observation_size

from .observations import observation


def growth_features(**fields) -> list[float]:
    """The last four base features: committed accuracy and real gain, each with its flag."""
    return encode(observation(**fields))[BASE_FEATURES - 4:BASE_FEATURES]


def test_the_committed_accuracy_and_the_real_gain_are_observed_with_their_flags():
    assert growth_features(committed_accuracy=72.0, real_gain=4.0) == [0.72, 1.0, 0.4, 1.0]
    assert growth_features(committed_accuracy=72.0, real_gain=-30.0)[2:] == [-1.0, 1.0]  # clamped


def test_an_unmeasured_real_gain_is_the_sentinel_not_a_zero():
    # no reference host (a reward mode other than escrow): not measured
    assert growth_features(committed_accuracy=72.0, real_gain=None)[2:] == [UNMEASURED, 0.0]


def test_the_feature_vector_has_the_documented_length():
    assert len(encode(observation(committed_accuracy=50.0))) == observation_size(1, False)
