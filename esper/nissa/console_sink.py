"""A sink that shows a run's progress on the terminal (stderr): batch, epoch, accuracy, seeds."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from esper.leyline.events import TelemetryEvent, TelemetryEventType


class ConsoleProgressSink:
    """Advances one progress bar per epoch of the episode batch; the description shows the
    mean validation accuracy over the envs and the seeds live / fossilised."""

    name = "console"

    def __init__(self, batches: int, episode_length: int, envs: int,
                 console: Console | None = None) -> None:
        self.batches, self.episode_length, self.envs = batches, episode_length, envs
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(bar_width=20), MofNCompleteColumn(),
            TimeElapsedColumn(), console=console or Console(stderr=True), transient=False)
        self.task = self.progress.add_task("starting", total=batches * episode_length)
        self._accuracy: dict[int, float] = {}
        self._live: dict[int, int] = {}
        self._fossilized: dict[int, int] = {}
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
        accuracy = sum(self._accuracy.values()) / len(self._accuracy)
        description = (f"batch {batch + 1}/{self.batches} epoch {epoch + 1}/{self.episode_length}"
                       f"  val acc {accuracy:5.1f}%  seeds live {sum(self._live.values())}"
                       f" fossilised {sum(self._fossilized.values())}")
        self.progress.update(self.task, advance=1, description=description)

    def close(self) -> None:
        self.progress.stop()
