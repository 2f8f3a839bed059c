"""What the driver asks of an executor: run trial tasks somewhere, bring their messages back."""

from __future__ import annotations

from typing import Protocol

from esper.sweep.relay import Message
from esper.sweep.worker import TrialTask


class Executor(Protocol):
    """Runs up to ``slots`` trials at once (``LocalExecutor``, ``RayExecutor``)."""

    slots: int

    def submit(self, task: TrialTask) -> None:
        """Start `task` (the caller keeps at most ``slots`` in flight)."""

    def receive(self, timeout: float) -> list[Message]:
        """The messages that arrived within `timeout` seconds, in the order each worker sent
        them; a trial's ``TaskDone`` comes after every other message of it."""

    def interrupt(self) -> None:
        """Ask every trial in flight to stop (it ends KILLED and reports so)."""

    def close(self) -> None:
        """Stop the workers and release what the executor started."""
