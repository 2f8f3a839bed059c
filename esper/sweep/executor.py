"""What the driver asks of an executor: run trial tasks somewhere, bring their messages back."""

from __future__ import annotations

from typing import Protocol

from esper.sweep.errors import SweepError
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


def executor_for(kind: str, address: str | None, slots: int) -> Executor:
    """The executor named ``kind``: "local" (worker processes here) or "ray" (Ray tasks on the
    cluster at ``address``, else a local Ray), running up to ``slots`` trials at once.

    Raises:
        SweepError: an ``address`` without the "ray" executor.
    """
    if kind == "ray":
        from esper.sweep.ray_executor import RayExecutor  # imports ray: only when asked for

        return RayExecutor(address, slots)
    if address is not None:
        raise SweepError("--address is the Ray cluster's: use it with --executor ray")
    from esper.sweep.local import LocalExecutor

    return LocalExecutor(slots)
