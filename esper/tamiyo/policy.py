"""The interface every decision policy offers the env loop."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from esper.leyline.actions import FactoredAction
from esper.leyline.events import PPOUpdatePayload, Severity, TelemetryEventType
from esper.tamiyo.observation import EnvObservation


@dataclass(frozen=True)
class ProbeEvent:
    """An event a policy's probe raised, for the env loop to emit: the policy does not hold the
    telemetry hub. The env loop stamps the step fields (batch, and epoch for a rollout event)."""

    event_type: TelemetryEventType
    payload: Any  # an instance of leyline.events.PAYLOAD_TYPES[event_type]
    severity: Severity
    message: str
    env_id: int | None  # None: an event of the whole batch (a PPO update)


@dataclass(frozen=True)
class UpdateReport:
    """What a learning policy reports at the end of a batch: the update's metrics (emitted as
    PPO_UPDATE_COMPLETED) and its probes' events (emitted right after them)."""

    metrics: PPOUpdatePayload
    events: tuple[ProbeEvent, ...]


class Policy(Protocol):
    """Chooses one factored action per env at the end of every epoch, and may learn from the
    rewards of a batch of episodes."""

    def start_episode(self, n_envs: int) -> None:
        """Forget per-episode state; `n_envs` episodes start side by side."""

    def act(self, observations: list[EnvObservation]) -> list[FactoredAction]:
        """One action per env, in env order."""

    def drain_probe_events(self) -> tuple[ProbeEvent, ...]:
        """The probe events raised by `act` since the last call, oldest first (the env loop
        calls this after every `act` and emits them)."""

    def record_rewards(self, rewards: list[float]) -> None:
        """The rewards of the actions just taken, in env order."""

    def end_episode(self, final: list[EnvObservation], batch: int) -> UpdateReport | None:
        """The episodes of batch `batch` ended in states `final`; learn, and report the update
        (None for a policy that does not learn)."""


class FixedPolicy:
    """Base of the policies that do not learn: rewards are ignored and nothing is updated."""

    def drain_probe_events(self) -> tuple[ProbeEvent, ...]:
        """A fixed policy has no probes."""
        return ()

    def record_rewards(self, rewards: list[float]) -> None:
        """A fixed policy ignores rewards."""

    def end_episode(self, final: list[EnvObservation], batch: int) -> UpdateReport | None:
        return None
