"""`esper run` mirrored to MLflow: read back with MlflowClient from a real store, every part of
the MLflow run matches the registry (tags, params, metric histories with steps, artifacts,
status)."""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from mlflow import MlflowClient
from mlflow.entities import Run

from esper.cli import cli
from esper.leyline.codec import encode_event
from esper.leyline.events import TelemetryEvent, TelemetryEventType
from esper.nissa.metric_series import MetricMapper
from esper.nissa.mlflow_run import config_params
from esper.nissa.mlflow_sink import uncompressed_preview
from esper.nissa.mlflow_store import URI_ENV_VAR
from esper.registry import Registry, RunRecord
from esper.registry.wiring import Outcome

from .conftest import new_store
from .esper_process import QUICKSTART, run_without_mlflow

T = TelemetryEventType
TWO_BATCHES = ["--set", "training.batches=2", "--set", "training.episode_length=3",
               "--set", "task.max_train=200", "--set", "task.max_val=100",
               "--set", "telemetry.probes=[]"]  # their fields need more epochs (wiring)


@dataclass(frozen=True)
class Mirrored:
    record: RunRecord
    events: list[TelemetryEvent]
    client: MlflowClient
    mlflow_run: Run
    downloads: Path
    registry_path: Path


@pytest.fixture(scope="module")
def mirrored(tmp_path_factory, mlflow_template) -> Mirrored:
    root = tmp_path_factory.mktemp("mirrored")
    uri = new_store(root / "mlflow", mlflow_template)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(URI_ENV_VAR, uri)
        result = CliRunner().invoke(cli, ["run", QUICKSTART, *TWO_BATCHES, "--registry",
                                          str(root / "runs.db"), "--name", "mirrored", "--quiet"])
    assert result.exit_code == 0, result.output
    with Registry.open(root / "runs.db") as registry:
        record = registry.resolve("mirrored")
        events = list(registry.events(record.run_id))
    client = MlflowClient(tracking_uri=uri)
    return Mirrored(record, events, client, client.get_run(record.mlflow_run_id),
                    root / "downloads", root / "runs.db")


def test_one_mlflow_run_per_esper_run_named_tagged_and_linked_in_the_registry(mirrored):
    record, info, tags = mirrored.record, mirrored.mlflow_run.info, mirrored.mlflow_run.data.tags
    experiment = mirrored.client.get_experiment(info.experiment_id)
    assert experiment.name == "quickstart"
    # the model-training layout of the MLflow UI, not the GenAI one; a description
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert "esper experiment quickstart" in experiment.tags["mlflow.note.content"]
    assert Path(experiment.artifact_location.removeprefix("file://")).parent.name == "mlartifacts"
    assert record.mlflow_experiment_id == info.experiment_id
    assert info.run_name == record.name == "mirrored"
    assert tags["esper.run_id"] == record.run_id
    assert tags["mlflow.runName"] == "mirrored"
    assert tags["mlflow.source.name"] == QUICKSTART
    assert tags["mlflow.source.git.commit"] == record.git_commit is not None
    assert tags["mlflow.note.content"] == record.notes == (
        "Heuristic policy on digits; seeds germinate, pass their gates and fossilise.")
    assert tags["mlflow.user"] == record.user
    assert tags["esper.events"] == str(record.event_count)
    shown = CliRunner().invoke(cli, ["show", "mirrored", "--registry", str(mirrored.registry_path)])
    assert f"run {info.run_id} in experiment {info.experiment_id}" in shown.output


def test_status_and_times_mirror_the_registry(mirrored):
    record, info = mirrored.record, mirrored.mlflow_run.info
    assert record.status.value == info.status == mirrored.mlflow_run.data.tags["esper.status"]
    assert info.start_time == round(record.started_at * 1000)
    last = mirrored.events[-1]
    assert last.event_type is T.RUN_FINISHED and info.end_time == round(last.ts * 1000)


def test_params_are_the_resolved_config_flattened_to_dotted_keys(mirrored):
    params = mirrored.mlflow_run.data.params
    assert params == config_params(mirrored.record.config).params
    assert params["training.episode_length"] == "3"
    assert params["task.dataset"] == "digits"
    assert json.loads(params["blueprints"]) == ["conv_light", "attention", "depthwise", "norm"]
    assert params["wiring"] == "null" and params["tracking.mlflow"] == "true"


def test_metric_histories_have_the_values_and_steps_of_the_events(mirrored):
    client, run_id, events = mirrored.client, mirrored.mlflow_run.info.run_id, mirrored.events
    for env_id in (0, 1):
        epochs = [e for e in events if e.event_type is T.EPOCH_COMPLETED and e.env_id == env_id]
        assert len(epochs) == 6  # 2 batches x 3 epochs: global epochs 0..5
        for key, field in (("val_accuracy", "val_accuracy"), ("train_loss", "train_loss")):
            history = client.get_metric_history(run_id, f"env{env_id}/{key}")
            assert [(m.step, m.value, m.timestamp) for m in history] == [
                (e.batch * 3 + e.epoch, getattr(e.data, field), round(e.ts * 1000))
                for e in epochs]
    returns = client.get_metric_history(run_id, "episode/return")
    assert [(m.step, m.value) for m in returns] == [
        (e.batch, e.data.mean_episode_return) for e in events
        if e.event_type is T.BATCH_COMPLETED]
    expected_keys = {p.key for p in MetricMapper().points(events)}
    wiring_keys = {f"wiring/{o.value}" for o in Outcome}
    assert set(mirrored.mlflow_run.data.metrics) == expected_keys | wiring_keys


def test_artifacts_hold_the_experiment_file_the_config_the_events_and_a_plot(mirrored):
    client, run_id = mirrored.client, mirrored.mlflow_run.info.run_id
    listed = {f.path for top in client.list_artifacts(run_id)
              for f in client.list_artifacts(run_id, top.path)}
    assert listed == {"experiment/quickstart.yaml", "config/resolved.json",
                      "events/events.jsonl.gz", "events/events.jsonl", "plots/learning_curves.png",
                      "plots/growth.png", "wiring/wiring.json", "wiring/wiring.md"}
    folder = Path(client.download_artifacts(run_id, "", str(mirrored.downloads)))
    assert (folder / "experiment/quickstart.yaml").read_bytes() == Path(QUICKSTART).read_bytes()
    assert json.loads((folder / "config/resolved.json").read_text()) == mirrored.record.config
    with gzip.open(folder / "events/events.jsonl.gz", "rt", encoding="utf-8") as stream:
        assert stream.read().splitlines() == [encode_event(e) for e in mirrored.events]
    assert (folder / "events/events.jsonl").read_text().splitlines() == [
        encode_event(e) for e in mirrored.events]  # the same stream, previewable in the UI
    for plot in ("learning_curves", "growth"):
        assert (folder / f"plots/{plot}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_stream_longer_than_the_preview_limit_is_only_compressed(tmp_path):
    archive = tmp_path / "events.jsonl.gz"
    with gzip.open(archive, "wt") as stream:
        stream.write("x" * 1000)
    assert uncompressed_preview(archive, tmp_path / "a.jsonl", limit=1000) == tmp_path / "a.jsonl"
    assert (tmp_path / "a.jsonl").read_text() == "x" * 1000
    assert uncompressed_preview(archive, tmp_path / "b.jsonl", limit=999) is None
    assert not (tmp_path / "b.jsonl").exists()


def test_no_mlflow_records_to_the_registry_only(tmp_path, mlflow_uri):
    record = run_without_mlflow(tmp_path / "runs.db")
    assert record.mlflow_run_id is None
    assert [s.name for s in record.sinks] == ["registry", "metrics"]
    client = MlflowClient(tracking_uri=mlflow_uri)
    assert [e.name for e in client.search_experiments()] == ["Default"]  # nothing created
