"""The interface every decision policy offers the env loop."""

from __future__ import annotations

from typing import Protocol

from esper.leyline.actions import FactoredAction
from esper.leyline.events import PPOUpdatePayload
from esper.tamiyo.observation import EnvObservation


class Policy(Protocol):
    """Chooses one factored action per env at the end of every epoch, and may learn from the
    rewards of a batch of episodes."""

    def start_episode(self, n_envs: int) -> None:
        """Forget per-episode state; `n_envs` episodes start side by side."""

    def act(self, observations: list[EnvObservation]) -> list[FactoredAction]:
        """One action per env, in env order."""

    def record_rewards(self, rewards: list[float]) -> None:
        """The rewards of the actions just taken, in env order."""

    def end_episode(self, final: list[EnvObservation], batch: int) -> PPOUpdatePayload | None:
        """The episodes of batch `batch` ended in states `final`; learn, and report the update
        (None for a policy that does not learn)."""


class FixedPolicy:
    """Base of the policies that do not learn: rewards are ignored and nothing is updated."""

    def record_rewards(self, rewards: list[float]) -> None:
        """A fixed policy ignores rewards."""

    def end_episode(self, final: list[EnvObservation], batch: int) -> PPOUpdatePayload | None:
        return None
