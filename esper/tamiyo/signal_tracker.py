"""Per-env training signals: loss/accuracy history, host stabilisation and plateau."""

from __future__ import annotations

from collections import deque

from esper.leyline.config import SignalsConfig

HISTORY = 5  # epochs of loss / accuracy history kept for observations


class SignalTracker:
    """Tracks one env's validation signals over an episode.

    The host is *stabilised* after `stabilisation_epochs` consecutive epochs whose relative
    validation-loss change lies in [`stabilisation_min_change`, `stabilisation_max_change`];
    once stabilised it stays so for the episode. A *plateau epoch* is one whose accuracy gain
    is below `plateau_min_gain`.
    Every policy type has one per env (the observation, the trends and diagnostics probes read
    it), so its thresholds are a section of their own, `signals` (docs/pipeline.md section 5).
    """

    def __init__(self, config: SignalsConfig) -> None:
        self.config = config
        self.losses: deque[float] = deque(maxlen=HISTORY)
        self.accuracies: deque[float] = deque(maxlen=HISTORY)
        self.stable_epochs = 0
        self.stabilised = False
        self.plateau_epochs = 0

    def update(self, val_loss: float, val_accuracy: float) -> bool:
        """Record one epoch; return True on the epoch the host first counts as stabilised."""
        if self.losses and self.losses[-1] > 0:
            change = (val_loss - self.losses[-1]) / self.losses[-1]
            steady = self.config.stabilisation_min_change <= change <= self.config.stabilisation_max_change
            self.stable_epochs = self.stable_epochs + 1 if steady else 0
        if self.accuracies:
            gain = val_accuracy - self.accuracies[-1]  # positive = improvement
            self.plateau_epochs = self.plateau_epochs + 1 if gain < self.config.plateau_min_gain else 0
        self.losses.append(val_loss)
        self.accuracies.append(val_accuracy)
        newly = not self.stabilised and self.stable_epochs >= self.config.stabilisation_epochs
        self.stabilised = self.stabilised or newly
        return newly
