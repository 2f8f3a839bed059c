"""Run by tests in a child process: open an MLflow store and its experiment, as a run does.

    python store_opener_script.py URI EXPERIMENT GO_FILE

Waits until GO_FILE exists (so that several children open the store at the same moment),
then prints the experiment id; exits 1 with the one-line message if the store is unavailable.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from esper.nissa.mlflow_sink import MlflowTarget
from esper.nissa.mlflow_store import MlflowUnavailable


def main() -> None:
    uri, experiment, go = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    while not go.exists():
        time.sleep(0.01)
    try:
        print(MlflowTarget.open(uri, experiment).experiment_id)
    except MlflowUnavailable as failure:
        sys.exit(failure.message)


if __name__ == "__main__":
    main()
