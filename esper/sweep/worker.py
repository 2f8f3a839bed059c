"""One trial, run wherever the executor puts it: compile, train, and relay every record."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from esper.experiment.compile import compile_spec
from esper.experiment.runner import train_recorded
from esper.leyline.config import ExperimentSpec
from esper.nissa.recording import recording
from esper.registry import NewRun, RunRecord
from esper.sweep.relay import RelayRegistry, Send

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrialTask:
    """What a worker needs: the trial's experiment and the row the driver created for it."""

    spec: ExperimentSpec
    record: RunRecord
    registry_path: Path  # the driver's runs.db (artifacts go beside it)


def run_trial(task: TrialTask, send: Send) -> None:
    """Run `task` inside a recording whose writes all go to `send`.

    Compiling happens inside the recording, so a trial that cannot be built on this machine
    (no data, no device) ends FAILED with its traceback like one that fails while training.
    Ctrl-C (KeyboardInterrupt) ends it KILLED and is re-raised; any other failure is recorded
    and logged here, not raised: the sweep goes on.
    """
    record = task.record
    relay = RelayRegistry(record, task.registry_path, send)
    new = NewRun(experiment=record.experiment, config=record.config, seed=record.seed,
                 name=record.name)
    try:
        with recording(relay, new) as rec:  # type: ignore[arg-type]  # the relay's duck type
            train_recorded(task.spec, compile_spec(task.spec), rec)
    except Exception as error:  # recorded FAILED, with its traceback, by `recording`
        log.info("trial %s (%s) failed: %s: %s", record.name, record.run_id,
                 type(error).__name__, error)
