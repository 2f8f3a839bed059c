"""The interface every decision policy offers the env loop."""

from __future__ import annotations

from typing import Protocol

from esper.leyline.actions import FactoredAction
from esper.tamiyo.observation import EnvObservation


class Policy(Protocol):
    """Chooses one factored action per env at the end of every epoch."""

    def start_episode(self, n_envs: int) -> None:
        """Forget per-episode state; `n_envs` episodes start side by side."""

    def act(self, observations: list[EnvObservation]) -> list[FactoredAction]:
        """One action per env, in env order."""
