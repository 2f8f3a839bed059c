from esper.tamiyo.signal_tracker import SignalTracker
from tests.spec_factory import tiny_spec


def tracker() -> SignalTracker:
    return SignalTracker(tiny_spec().signals)


def test_stabilises_after_three_steady_epochs_and_reports_it_once():
    signals = tracker()
    newly = [signals.update(loss, 50.0) for loss in (2.0, 1.0, 0.99, 0.98, 0.97, 0.96)]
    # 2.0 -> 1.0 is a -50% change (not steady); the next three are steady
    assert newly == [False, False, False, False, True, False]
    assert signals.stabilised


def test_a_jump_resets_the_steady_count():
    signals = tracker()
    for loss in (1.0, 0.99, 0.98, 1.2, 1.19, 1.18):
        signals.update(loss, 50.0)
    assert not signals.stabilised
    assert signals.stable_epochs == 2


def test_plateau_counts_epochs_with_small_gains_and_resets_on_improvement():
    signals = tracker()
    for accuracy in (50.0, 50.2, 50.3, 50.4):
        signals.update(1.0, accuracy)
    assert signals.plateau_epochs == 3
    signals.update(1.0, 52.0)  # +1.6 points: a real improvement
    assert signals.plateau_epochs == 0
    assert list(signals.accuracies)[-1] == 52.0
