"""Progress of `esper run` when stderr is not a terminal: whole plain lines as the run goes, not
one bar line cut at 80 columns when it ends (issue 21)."""

from __future__ import annotations

import io
import time

from rich.console import Console

from esper.experiment.runner import run
from esper.nissa.console_sink import ConsoleProgressSink
from tests.growing_spec import growing_spec
from tests.nissa.esper_process import QUICKSTART, start_esper

SHORT = {"envs": 2, "batches": 2, "episode_length": 4}


def _run_with_lines(tmp_path, interval: float) -> list[str]:
    stream = io.StringIO()
    sink = ConsoleProgressSink(2, 4, 2, console=Console(file=io.StringIO()), stream=stream,
                               interval=interval)
    run(growing_spec(training=SHORT, tracking={"mlflow": False}), registry=tmp_path / "runs.db",
        sinks=[sink])
    return stream.getvalue().splitlines()


def test_off_a_terminal_every_epoch_can_be_a_line(tmp_path):
    lines = _run_with_lines(tmp_path, interval=0.0)
    assert len(lines) == 2 * 4
    assert lines[0].startswith("esper: batch 1/2 epoch 1/4  val acc ")
    assert lines[-1].startswith("esper: batch 2/2 epoch 4/4  val acc ")
    assert all(" seeds live " in line and line.endswith(" s)") for line in lines)
    assert [line.split("(")[1].split(" ")[0] for line in lines] == [
        f"{i}/8" for i in range(1, 9)]


def test_off_a_terminal_lines_are_paced_but_the_first_and_last_always_come(tmp_path):
    lines = _run_with_lines(tmp_path, interval=1e9)
    assert [line.split("(")[1].split(" ")[0] for line in lines] == ["1/8", "8/8"]


def test_esper_run_piped_to_a_file_reports_before_it_ends_and_never_cuts_a_line(tmp_path):
    log = tmp_path / "stderr.log"
    with open(log, "w") as stderr:
        process = start_esper("run", QUICKSTART, "--no-mlflow", "--registry",
                              str(tmp_path / "runs.db"), "--set", "training.batches=2",
                              "--set", "training.episode_length=30", "--set",
                              "task.max_train=200", "--set", "task.max_val=100",
                              "--set", "telemetry.probes=[]", "--wiring-failures=warn",
                              stderr=stderr)
        first = None
        deadline = time.monotonic() + 300
        while process.poll() is None and first is None and time.monotonic() < deadline:
            first = next((line for line in log.read_text().splitlines()
                          if line.startswith("esper: batch 1/2 epoch 1/30")), None)
            time.sleep(0.05)
        running_at_first_line = process.poll() is None
        process.communicate(timeout=600)
    assert process.returncode == 0
    assert first is not None and running_at_first_line
    lines = [line for line in log.read_text().splitlines() if line.startswith("esper: batch")]
    assert lines[-1].startswith("esper: batch 2/2 epoch 30/30") and "(60/60 epochs" in lines[-1]
    assert max(len(line) for line in lines) > 80  # whole lines, not cut at a console width
