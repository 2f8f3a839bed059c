"""The interface every decision policy offers the env loop."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from esper.leyline.actions import FactoredAction
from esper.leyline.emitter import EmittedEvent
from esper.leyline.events import PPOUpdatePayload
from esper.tamiyo.observation import EnvObservation


@dataclass(frozen=True)
class UpdateReport:
    """What a learning policy reports at the end of a batch: the update's metrics (emitted as
    PPO_UPDATE_COMPLETED) and its probes' events (emitted right after them, stamped with the
    batch: leyline.emitter says why the policy buffers them instead of holding the hub)."""

    metrics: PPOUpdatePayload
    events: tuple[EmittedEvent, ...]


class Policy(Protocol):
    """Chooses one factored action per env at the end of every epoch, and may learn from the
    rewards of a batch of episodes."""

    def start_episode(self, n_envs: int) -> None:
        """Forget per-episode state; `n_envs` episodes start side by side."""

    def act(self, observations: list[EnvObservation]) -> list[FactoredAction]:
        """One action per env, in env order."""

    def drain_probe_events(self) -> tuple[EmittedEvent, ...]:
        """The probe events raised by `act` since the last call, oldest first, without step
        fields (the env loop calls this after every `act` and replays them, stamped)."""

    def record_rewards(self, rewards: list[float]) -> None:
        """The rewards of the actions just taken, in env order."""

    def end_episode(self, final: list[EnvObservation], batch: int) -> UpdateReport | None:
        """The episodes of batch `batch` ended in states `final`; learn, and report the update
        (None for a policy that does not learn)."""


class FixedPolicy:
    """Base of the policies that do not learn: rewards are ignored and nothing is updated."""

    def drain_probe_events(self) -> tuple[EmittedEvent, ...]:
        """A fixed policy has no probes."""
        return ()

    def record_rewards(self, rewards: list[float]) -> None:
        """A fixed policy ignores rewards."""

    def end_episode(self, final: list[EnvObservation], batch: int) -> UpdateReport | None:
        return None
