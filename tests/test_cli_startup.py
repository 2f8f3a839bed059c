"""The command line starts without the heavy libraries: only commands that train import them;
Ctrl-C while it starts ends it with one line, no traceback."""

from __future__ import annotations

import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def test_importing_the_cli_loads_neither_torch_nor_mlflow_nor_matplotlib() -> None:
    probe = ("import sys, esper.cli; "
             "print(' '.join(m for m in ('torch', 'mlflow', 'matplotlib', 'scipy', 'ray') "
             "if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True).stdout.split()
    assert loaded == [], f"esper --help, runs, show... would wait for importing {loaded}"


@pytest.mark.parametrize("module", [
    "click",  # the first import of esper.cli: the command line is loading
    "torch",  # imported by `esper run` itself, before the experiment compiles
])
def test_ctrl_c_during_start_up_exits_130_with_one_line(tmp_path: Path, module: str) -> None:
    child = subprocess.Popen(
        [sys.executable, "-X", "importtime", "-m", "esper", "run",
         str(ROOT / "experiments" / "quickstart.yaml"), "--no-mlflow",
         "--registry", str(tmp_path / "runs.db")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    for line in child.stderr:  # importtime: a line as each module has been imported
        if line.split("|")[-1].strip() == module:
            child.send_signal(signal.SIGINT)
            break
    _, stderr = child.communicate(timeout=120)
    said = [line for line in stderr.splitlines() if not line.startswith("import time:")]
    # 130, or death by SIGINT (a shell reports 130 too): CPython ends so, however esper exits,
    # when the interrupt escaped source that C code ran (PyRun_String, in some modules' start-up).
    assert child.returncode in (130, -signal.SIGINT), stderr[-2000:]
    assert len(said) == 1 and said[0].startswith("Interrupted"), said


def test_the_esper_command_starts_through_the_guarded_entry_point() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["scripts"]["esper"] == "esper.__main__:main"
