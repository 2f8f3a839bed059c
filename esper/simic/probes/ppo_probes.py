"""The PPO-side probes a run switched on, composed for the policy and the PPO update.

Which probes run is decided once, when the policy is built: a probe that is off has no object
here, so it is never called, measures nothing and transfers nothing.
"""

from __future__ import annotations

from torch import Tensor

from esper.kasmina.gradients import measure_gradient_groups
from esper.leyline.config import TelemetryConfig
from esper.leyline.emitter import Emitter, EventList
from esper.leyline.events import PPOUpdatePayload
from esper.simic.probes.anomalies import AnomalyDetector
from esper.simic.probes.gradient_drift import (GradientDriftTracker, PolicyGradientRecorder,
                                               with_gradient_drift)
from esper.simic.probes.head_grad_norms import HeadGradNormRecorder, with_head_grad_norms
from esper.simic.probes.lstm_health import RolloutLSTMHealth, UpdateLSTMHealth, with_lstm_health
from esper.tamiyo.actor_critic import FactoredActorCritic, LSTMState, PolicyOutput
from esper.tamiyo.policy import UpdateReport


class UpdateProbes:
    """What one PPO update measures for the probes that are on; `ppo_update` calls it after
    every evaluation of the actions and after every backward pass."""

    def __init__(self, network: FactoredActorCritic, lstm_health: bool, head_grad_norms: bool,
                 drift: GradientDriftTracker | None) -> None:
        self.lstm = UpdateLSTMHealth() if lstm_health else None
        self.heads = HeadGradNormRecorder(network) if head_grad_norms else None
        self.gradient = PolicyGradientRecorder(network) if drift is not None else None
        self.drift = drift
        # every gradient group either probe reads, measured together: one transfer per backward
        self._groups = [*(self.heads.groups if self.heads else []),
                        *(self.gradient.groups if self.gradient else [])]
        self._relevant: list[bool] | None = None  # per action head, read once per update

    def after_evaluation(self, out: PolicyOutput) -> None:
        """The network has just been evaluated on the rollout."""
        if self.lstm is not None:
            assert out.hidden is not None and out.cells is not None
            self.lstm.observe(out.hidden, out.cells)

    def after_backward(self, causal: Tensor) -> None:
        """The loss has just been backpropagated (gradients not clipped yet); `causal` (B, heads)
        marks the heads each sample's op needs."""
        if not self._groups:
            return
        stats = measure_gradient_groups(self._groups)
        if self._relevant is None:  # the same actions every epoch
            self._relevant = causal.any(dim=0).tolist()
        n_heads = len(self.heads.groups) if self.heads is not None else 0
        if self.heads is not None:
            self.heads.record(stats[:n_heads], self._relevant)
        if self.gradient is not None:
            self.gradient.record(stats[n_heads:], self._relevant)

    def finish(self, metrics: PPOUpdatePayload, into: Emitter) -> PPOUpdatePayload:
        """`metrics` with the measured probe fields; the events of the measurements go `into`."""
        if self.lstm is not None:
            metrics = with_lstm_health(metrics, self.lstm.result())
        if self.heads is not None:
            metrics = with_head_grad_norms(metrics, self.heads.result())
        if self.gradient is not None and self.drift is not None:
            drift = self.drift.update(self.gradient.result())
            metrics = with_gradient_drift(metrics, drift)
            self.drift.report(drift, into)
        return metrics


class PPOProbes:
    """The PPO-side probes of one run's policy, and the state they keep between updates (the
    gradient-drift EMAs; the rollout's per-episode warnings)."""

    def __init__(self, telemetry: TelemetryConfig, network: FactoredActorCritic) -> None:
        self.network = network
        recurrent = network.config.recurrent
        # the mlp has no hidden state: its lstm_* fields stay None (not measured)
        self.lstm_health = telemetry.enabled("lstm_health") and recurrent
        self.head_grad_norms = telemetry.enabled("head_grad_norms")
        self.rollout_lstm = RolloutLSTMHealth(telemetry.lstm_health) if self.lstm_health else None
        self.gradient_drift = (GradientDriftTracker(telemetry.gradient_drift)
                               if telemetry.enabled("gradient_drift") else None)
        self.anomalies = (AnomalyDetector(telemetry.anomalies)
                          if telemetry.enabled("anomalies") else None)

    # --- rollout ---------------------------------------------------------------------------------

    def start_episode(self, n_envs: int) -> None:
        if self.rollout_lstm is not None:
            self.rollout_lstm.start_episode(n_envs)

    def after_act(self, state: LSTMState | None, into: Emitter) -> None:
        """Emit the events of the envs' hidden state after an act `into`."""
        if self.rollout_lstm is None:
            return
        assert state is not None
        self.rollout_lstm.observe(state, into)

    # --- update ----------------------------------------------------------------------------------

    def begin_update(self) -> UpdateProbes | None:
        """The measurements of the next update; None when no probe measures inside it."""
        if not (self.lstm_health or self.head_grad_norms or self.gradient_drift is not None):
            return None
        return UpdateProbes(self.network, self.lstm_health, self.head_grad_norms,
                            self.gradient_drift)

    def report(self, metrics: PPOUpdatePayload, measured: UpdateProbes | None,
               batch: int) -> UpdateReport:
        """The update's metrics with the probe fields measured, and its probe events."""
        events = EventList()
        if measured is not None:
            metrics = measured.finish(metrics, events)
        if self.anomalies is not None:
            self.anomalies.check(metrics, batch, events)
        return UpdateReport(metrics, events.drain())

    # --- checkpoint ------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, dict[str, float | None] | None]:
        """The state carried between updates (None for a probe that is off)."""
        drift = self.gradient_drift
        return {"gradient_drift": None if drift is None else drift.state_dict()}

    def load_state_dict(self, state: dict[str, dict[str, float | None] | None]) -> None:
        """Continue from `state`; a probe off then or now starts fresh."""
        drift_state = state["gradient_drift"]
        if self.gradient_drift is not None and drift_state is not None:
            self.gradient_drift.load_state_dict(drift_state)
