"""The local executor: a pool of worker processes on this machine.

Workers are spawned (not forked: the driver holds threads, SQLite and MLflow connections) and
each runs one trial at a time. They leave the terminal's process group, so Ctrl-C reaches the
driver only, which then interrupts the trials in flight itself (SIGINT to their workers).
Workers die with the driver however it ends (SIGKILL, OOM): their records go through it, so a
worker without it would only spend the machine. The multiprocessing resource tracker then
ends too: it exits once every process holding its pipe (the driver and workers) has gone.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.context import SpawnContext, SpawnProcess
from typing import Any

from esper.sweep.relay import Message, TaskDone
from esper.sweep.worker import TrialTask, run_trial

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_WATCH_INTERVAL = 1.0  # seconds between checks of the parent pid (not Linux)


class _Worker:
    """One worker process, the queue of its tasks, and the trial it is running."""

    def __init__(self, ctx: SpawnContext, messages: Any, threads: int, stop: Any) -> None:
        self.tasks = ctx.Queue()
        self.process: SpawnProcess = ctx.Process(
            target=_serve, args=(self.tasks, messages, threads, os.getpid(), stop),
            name="esper-sweep-worker", daemon=True)
        with _children_ignore_sigint():
            self.process.start()
        self.run_id: str | None = None  # the trial in flight


class LocalExecutor:
    """Up to `slots` trials at once, each in a worker process of this machine."""

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self._ctx = multiprocessing.get_context("spawn")
        self._messages = self._ctx.Queue()
        self._stop = self._ctx.Event()  # set by interrupt: no worker starts another trial
        self._threads = max(1, (os.cpu_count() or 1) // slots)  # torch threads per worker
        self._workers: list[_Worker] = []

    def submit(self, task: TrialTask) -> None:
        worker = next((w for w in self._workers if w.run_id is None), None)
        if worker is None:
            worker = _Worker(self._ctx, self._messages, self._threads, self._stop)
            self._workers.append(worker)
        worker.run_id = task.record.run_id
        worker.tasks.put(task)

    def receive(self, timeout: float) -> list[Message]:
        dead = [w for w in self._workers if w.run_id is not None and not w.process.is_alive()]
        messages = _drain(self._messages, timeout)  # after the liveness check: a dead worker's
        for message in messages:                    # last messages are already in the queue
            if isinstance(message, TaskDone):
                self._idle(message.run_id)
        for worker in dead:
            if worker.run_id is not None:
                code = worker.process.exitcode
                messages.append(TaskDone(worker.run_id, f"the worker process died (exit code "
                                                        f"{code}) before the trial ended"))
                self._workers.remove(worker)
        return messages

    def interrupt(self) -> None:
        """Stop the trials in flight: SIGINT to the workers running one, and the stop event for
        a worker still starting (its SIGINT is ignored until it serves)."""
        self._stop.set()
        for worker in self._workers:
            if worker.run_id is not None and worker.process.is_alive():
                os.kill(worker.process.pid, signal.SIGINT)

    def close(self) -> None:
        for worker in self._workers:
            if worker.process.is_alive():
                worker.tasks.put(None)
        for worker in self._workers:
            worker.process.join(10)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
        self._workers = []

    def _idle(self, run_id: str) -> None:
        for worker in self._workers:
            if worker.run_id == run_id:
                worker.run_id = None


def _drain(messages: Any, timeout: float) -> list[Message]:
    try:
        received = [messages.get(timeout=timeout)]
    except queue.Empty:
        return []
    while True:
        try:
            received.append(messages.get_nowait())
        except queue.Empty:
            return received


@contextmanager
def _children_ignore_sigint() -> Iterator[None]:
    """While the block starts a worker, SIGINT is ignored, so the spawned child starts with it
    ignored (a disposition exec keeps): a Ctrl-C while it imports esper, still in the terminal's
    process group, would print a traceback there. The driver blocks SIGINT meanwhile, so a
    Ctrl-C of that moment is delivered to it afterwards, not lost."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread sets handlers; the driver starts workers there
        return
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _serve(tasks: Any, messages: Any, threads: int, driver: int, stop: Any) -> None:
    """A worker's life: run the trials it is given until it gets None; once `stop` is set
    (the sweep is stopping) a trial not yet begun ends KILLED without running."""
    _die_with(driver)
    os.setpgid(0, 0)  # out of the terminal's process group: the driver relays Ctrl-C
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # between trials; a trial's recording handles it
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # blocked if inherited so
    import torch

    torch.set_num_threads(threads)
    while (task := tasks.get()) is not None:
        stopped = TaskDone(task.record.run_id, "the sweep was stopped before the trial began",
                           "KILLED")  # no effect once the trial's recording has ended it
        done = TaskDone(task.record.run_id)
        try:
            # from here the driver's SIGINT interrupts; the stop event covers a SIGINT sent
            # while SIGINT was still ignored here (the worker was starting)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            if stop.is_set():
                raise KeyboardInterrupt
            run_trial(task, messages.put)
        except KeyboardInterrupt:
            done = stopped  # the driver is stopping the sweep
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            messages.put(done)


def _die_with(driver: int) -> None:
    """End this process when `driver`, its parent, ends: on Linux the kernel sends SIGKILL
    (prctl PR_SET_PDEATHSIG: when the driver's thread that started the worker ends, and the
    driver starts them from its main thread), elsewhere a thread polls the parent pid."""
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"prctl(PR_SET_PDEATHSIG): {os.strerror(errno)}")
    else:
        threading.Thread(target=_watch_parent, args=(driver,), name="esper-driver-watch",
                         daemon=True).start()
    if os.getppid() != driver:  # it ended before the watch began
        os._exit(1)


def _watch_parent(driver: int) -> None:
    while os.getppid() == driver:
        time.sleep(_WATCH_INTERVAL)
    os._exit(1)
