"""The Ray executor: each trial a Ray task on a Ray cluster (``pip install 'esper[ray]'``).

``address``: None connects to the cluster this process already joined (``ray.init`` was
called), else starts a local one; ``auto`` finds a running cluster on this machine (or from
``RAY_ADDRESS``); ``ray://HEAD:10001`` reaches a remote cluster through Ray Client. The tasks
stream their records back through a ``ray.util.queue.Queue`` (an actor), read by the driver.
"""

from __future__ import annotations

import os
import queue
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from esper.sweep.errors import SweepError
from esper.sweep.relay import Message, TaskDone
from esper.sweep.worker import TrialTask, run_trial

INSTALL_HINT = "pip install 'esper[ray]'"


class RayExecutor:
    """Up to `slots` trials at once, each a Ray task with one CPU."""

    def __init__(self, address: str | None, slots: int) -> None:
        try:
            import ray
            from ray.util.queue import Queue
        except ImportError:
            raise SweepError(f"--executor ray needs Ray, which is not installed: "
                             f"{INSTALL_HINT}") from None
        self._ray = ray
        self._started = not ray.is_initialized()
        if self._started:
            with _native_stderr() as native:
                try:
                    ray.init(address=address, logging_level="WARNING", log_to_driver=False)
                except ConnectionError as error:
                    raise SweepError(_connection_failure(address, error, native())) from None
        self.slots = slots
        self._queue = Queue(actor_options={"num_cpus": 0})
        self._trial = ray.remote(num_cpus=1, max_retries=0)(_ray_trial)
        self._running: dict[Any, str] = {}  # task ref -> trial run id

    def submit(self, task: TrialTask) -> None:
        ref = self._trial.remote(task, self._queue)
        self._running[ref] = task.record.run_id

    def receive(self, timeout: float) -> list[Message]:
        refs = list(self._running)
        ended = self._ray.wait(refs, num_returns=len(refs), timeout=0)[0] if refs else []
        messages = _drain(self._queue, 0 if ended else timeout)  # after wait: an ended task's
        for ref in ended:                                         # messages are all queued
            messages.append(TaskDone(self._running.pop(ref), self._error(ref)))
        return messages

    def interrupt(self) -> None:
        for ref in self._running:
            self._ray.cancel(ref)  # KeyboardInterrupt in the task: the trial ends KILLED

    def close(self) -> None:
        self._ray.kill(self._queue.actor)
        if self._started:
            self._ray.shutdown()

    def _error(self, ref: Any) -> str | None:
        """None when the task returned (its trial reported how it ended), else why not."""
        try:
            self._ray.get(ref)
        except self._ray.exceptions.TaskCancelledError:
            return "the Ray task was cancelled"
        except self._ray.exceptions.RayError as error:
            return f"the Ray task failed: {type(error).__name__}: {str(error).splitlines()[0]}"
        return None


# What Ray's GCS client logs (from C++, on the process's stderr) when the cluster uses token
# authentication and this process's token is missing or another: ray.init then raises a bare
# "Failed to connect" ConnectionError that hides it.
_AUTH_FAILURE = "InvalidAuthToken"
_AUTH_HINT = ("the cluster uses token authentication and this process's token is missing or "
              "wrong: give it the cluster's token (`ray get-auth-token` on the head prints it) in "
              "RAY_AUTH_TOKEN, in a file named by RAY_AUTH_TOKEN_PATH, or in ~/.ray/auth_token")


def _connection_failure(address: str | None, error: ConnectionError, native_log: str) -> str:
    """Why ray.init could not join the cluster, naming a token mismatch when Ray logged one."""
    if _AUTH_FAILURE in native_log:
        return f"cannot join the Ray cluster at {address!r}: {_AUTH_HINT} ({error})"
    return (f"cannot reach the Ray cluster at {address!r}: {error} (expected the address of a "
            "running cluster: auto, HOST:6379, or ray://HOST:10001)")


@contextmanager
def _native_stderr() -> Iterator[Callable[[], str]]:
    """Capture what native code writes to file descriptor 2 (Ray's C++ logs) while the block
    runs; yields a function that reads it. When the block succeeds it is written back to
    stderr, so no warning is lost; when it fails, the caller's error has explained it."""
    sys.stderr.flush()
    with tempfile.TemporaryFile() as capture:
        saved = os.dup(2)
        os.dup2(capture.fileno(), 2)
        try:
            yield lambda: _read(capture)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        sys.stderr.write(_read(capture))


def _read(capture: Any) -> str:
    capture.flush()
    capture.seek(0)
    return capture.read().decode("utf-8", "replace")


def _drain(messages: Any, timeout: float) -> list[Message]:
    try:
        received = [messages.get(timeout=timeout)] if timeout else []
    except queue.Empty:
        return []
    size = messages.qsize()
    return received + (messages.get_nowait_batch(size) if size else [])


def _ray_trial(task: TrialTask, messages: Any) -> None:
    """The body of a trial's Ray task."""
    run_trial(task, messages.put)
