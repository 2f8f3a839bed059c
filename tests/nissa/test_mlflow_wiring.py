"""The wiring status of a run reaches its MLflow run: counts, tag and report artifacts."""

from mlflow.tracking import MlflowClient

from esper.experiment.runner import run
from tests.growing_spec import growing_spec


def test_wiring_counts_tag_and_reports_are_logged_to_mlflow(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    spec = growing_spec(tracking={"mlflow": True, "uri": uri},
                        wiring={"expect": ["TELE-410"], "xfail": {"TELE-420": "stale gap"}})
    result = run(spec, registry=tmp_path / "runs.db")
    client = MlflowClient(tracking_uri=uri)
    mlflow_run = client.get_run(result.record.mlflow_run_id)
    assert mlflow_run.data.tags["esper.wiring"] == "fail"  # TELE-420 is wired: XPASS
    counts = {o: sum(w.outcome.value == o for w in result.wiring) for o in ("PASS", "XPASS")}
    assert mlflow_run.data.metrics["wiring/PASS"] == counts["PASS"] > 0
    assert mlflow_run.data.metrics["wiring/XPASS"] == counts["XPASS"] > 0
    files = {a.path for a in client.list_artifacts(mlflow_run.info.run_id, "wiring")}
    assert files == {"wiring/wiring.json", "wiring/wiring.md"}
