"""A thread that stamps a run's ``heartbeat_at`` every few seconds while the run lives.

A RUNNING row whose heartbeat is older than the reader's ``stale_after`` is shown as CRASHED
(docs/architecture.md §4): this is how a run killed by SIGKILL or a power loss on another host is
recognised. On the same host the dead pid tells it sooner.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

logger = logging.getLogger(__name__)

DEFAULT_INTERVAL = 5.0  # seconds between heartbeats


class Heartbeat:
    """Calls ``beat()`` every ``interval`` seconds on a daemon thread until ``stop()``.

    A failing beat is logged and retried at the next interval: a missed heartbeat must not end
    the run (a long one makes the run look crashed, which readers then report).
    """

    def __init__(self, beat: Callable[[], None], interval: float = DEFAULT_INTERVAL) -> None:
        self._beat = beat
        self._interval = interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="esper-heartbeat", daemon=True)

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        reported = None  # the failure last logged: one that repeats at every beat is logged once
        while not self._stopped.wait(self._interval):
            try:
                self._beat()
            except Exception as exc:  # reported; the next beat tries again
                failure = f"{type(exc).__name__}: {exc}"
                if failure != reported:
                    logger.warning("heartbeat failed: %s", failure)
                reported = failure
            else:
                reported = None
