"""The command line starts without the heavy libraries: only commands that train import them."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_cli_loads_neither_torch_nor_mlflow_nor_matplotlib() -> None:
    probe = ("import sys, esper.cli; "
             "print(' '.join(m for m in ('torch', 'mlflow', 'matplotlib', 'scipy', 'ray') "
             "if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True).stdout.split()
    assert loaded == [], f"esper --help, runs, show... would wait for importing {loaded}"
