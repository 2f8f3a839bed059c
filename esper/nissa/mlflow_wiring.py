"""The wiring status of a run in its MLflow run: counts as metrics, a tag, the report as files."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from mlflow.entities import Metric

from esper.nissa.mlflow_store import MlflowStore
from esper.registry.records import RunRecord
from esper.registry.wiring_report import wiring_counts, wiring_markdown

WIRING_TAG = "esper.wiring"


def log_wiring(store: MlflowStore, record: RunRecord, rows: list[dict[str, Any]]) -> None:
    """Log `record`'s wiring rows to its MLflow run: `wiring/<outcome>` counts, the tag
    `esper.wiring=ok|fail`, and `wiring/wiring.json` + `wiring/wiring.md` artifacts.

    Raises:
        MlflowUnavailable: the store cannot be written.
    """
    assert record.mlflow_run_id is not None, "the run has no MLflow run"
    counts = wiring_counts(rows)
    failed = counts["FAIL"] + counts["XPASS"] > 0
    with store.reporting(f"log the wiring of run {record.run_id}"), \
            tempfile.TemporaryDirectory() as tmp:
        client, mlflow_run = store.client, record.mlflow_run_id
        ended_ms = int(1000 * (record.ended_at or record.started_at))  # replays log the same
        client.log_batch(mlflow_run, metrics=[
            Metric(f"wiring/{outcome}", count, ended_ms, 0) for outcome, count in counts.items()])
        client.set_tag(mlflow_run, WIRING_TAG, "fail" if failed else "ok")
        (Path(tmp) / "wiring.json").write_text(json.dumps(rows, indent=2))
        (Path(tmp) / "wiring.md").write_text(wiring_markdown([(record, rows)]))
        client.log_artifact(mlflow_run, str(Path(tmp) / "wiring.json"), "wiring")
        client.log_artifact(mlflow_run, str(Path(tmp) / "wiring.md"), "wiring")
