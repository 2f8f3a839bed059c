"""A sink that shows a run's progress on stderr: batch, epoch, accuracy, seeds, elapsed time.

On a terminal it is a rich progress bar. Anywhere else (stderr piped to a file, a CI log) a bar
would print nothing until the run ends and then one line cut at the console width, so it writes
plain, whole lines instead: one when the run's first epoch is done, then at most one every
``interval`` seconds, and one for the last epoch.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from esper.leyline.events import TelemetryEvent, TelemetryEventType

PLAIN_INTERVAL = 10.0  # seconds between two plain progress lines


class ConsoleProgressSink:
    """Counts the epochs of the episode batch (one step when the last env finished the epoch);
    shows the mean validation accuracy over the envs and the seeds live / fossilised.

    :param console: where the bar goes (stderr); a console that is not a terminal gets lines.
    :param stream: where the plain lines go (stderr).
    """

    name = "console"

    def __init__(self, batches: int, episode_length: int, envs: int,
                 console: Console | None = None, stream: TextIO | None = None,
                 interval: float = PLAIN_INTERVAL) -> None:
        self.batches, self.episode_length, self.envs = batches, episode_length, envs
        self.total = batches * episode_length
        self.done = 0
        self.console = console or Console(stderr=True)
        self.stream = stream or sys.stderr
        self.interval = interval
        self.started = time.monotonic()
        self._last_line: float | None = None
        self._accuracy: dict[int, float] = {}
        self._live: dict[int, int] = {}
        self._fossilized: dict[int, int] = {}
        self.progress: Progress | None = None
        if self.console.is_terminal:
            self.progress = Progress(
                TextColumn("{task.description}"), BarColumn(bar_width=20), MofNCompleteColumn(),
                TimeElapsedColumn(), console=self.console, transient=False)
            self.task = self.progress.add_task("starting", total=self.total)
            self.progress.start()

    def write(self, events: list[TelemetryEvent]) -> None:
        for event in events:
            if event.event_type is not TelemetryEventType.EPOCH_COMPLETED:
                continue
            env = event.env_id
            self._accuracy[env] = event.data.val_accuracy
            self._live[env] = event.data.seeds_live
            self._fossilized[env] = event.data.seeds_fossilized
            if env == self.envs - 1:
                self._advance(event.batch, event.epoch)

    def _advance(self, batch: int, epoch: int) -> None:
        self.done += 1
        accuracy = sum(self._accuracy.values()) / len(self._accuracy)
        description = (f"batch {batch + 1}/{self.batches} epoch {epoch + 1}/{self.episode_length}"
                       f"  val acc {accuracy:5.1f}%  seeds live {sum(self._live.values())}"
                       f" fossilised {sum(self._fossilized.values())}")
        if self.progress is not None:
            self.progress.update(self.task, advance=1, description=description)
            return
        now = time.monotonic()
        due = self._last_line is None or now - self._last_line >= self.interval
        if due or self.done == self.total:
            self._last_line = now
            elapsed = now - self.started
            print(f"esper: {description}  ({self.done}/{self.total} epochs, {elapsed:.0f} s)",
                  file=self.stream, flush=True)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
