"""Wiring outcomes of real runs, the exit code of `esper run`, `esper wiring` and its Markdown."""

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from esper.cli import cli
from esper.registry import Registry

SMALL = {"training": {"envs": 2, "batches": 2, "episode_length": 4},
         "task": {"dataset": "digits", "max_train": 200, "max_val": 100},
         "slots": {"enabled": ["r0c1"], "max_seeds": 1},
         "host": {"n_blocks": 2, "base_channels": 4},
         "tracking": {"mlflow": False}}


def experiment(tmp_path: Path, policy: str, wiring: dict | None) -> str:
    document = {"name": f"wired_{policy}", "seed": 3, **SMALL,
                "policy": {"type": policy, "feature_dim": 16, "hidden_dim": 16},
                "telemetry": {"probes": ["lstm_health"]}}
    if wiring is not None:
        document["wiring"] = wiring
    path = tmp_path / f"{policy}-{len(list(tmp_path.iterdir()))}.yaml"
    path.write_text(yaml.safe_dump(document))
    return str(path)


def esper_run(tmp_path, policy, wiring):
    db = tmp_path / "runs.db"
    result = CliRunner().invoke(cli, ["run", experiment(tmp_path, policy, wiring), "--registry",
                                      str(db), "--json"])
    summary = json.loads(result.stdout) if result.stdout.strip() else None
    return result, summary, db


def tele340(db, run_id):
    with Registry.open(db) as registry:
        return {row["outcome"] for row in registry.wiring(run_id) if row["tele_id"] == "TELE-340"}


def test_lstm_reports_tele340_pass_and_exits_0(tmp_path):
    result, summary, db = esper_run(tmp_path, "lstm", {"expect": ["TELE-340"]})
    assert result.exit_code == 0, result.output
    assert tele340(db, summary["run_id"]) == {"PASS"}


def test_mlp_reports_tele340_fail_and_exits_1_after_recording_everything(tmp_path):
    result, summary, db = esper_run(tmp_path, "mlp", {"expect": ["TELE-340"]})
    assert result.exit_code == 1
    assert "TELE-340 lstm_h_norm FAIL" in result.stderr
    assert summary["status"] == "FINISHED" and tele340(db, summary["run_id"]) == {"FAIL"}


def test_a_declared_gap_is_xfail_and_exits_0(tmp_path):
    result, summary, db = esper_run(tmp_path, "mlp", {"xfail": {"TELE-340": "mlp has no memory"}})
    assert result.exit_code == 0, result.output
    assert tele340(db, summary["run_id"]) == {"XFAIL"}


def test_a_wired_field_declared_as_gap_is_xpass_and_exits_1(tmp_path):
    result, summary, db = esper_run(tmp_path, "lstm", {"xfail": {"TELE-340": "stale"}})
    assert result.exit_code == 1
    assert "XPASS" in result.stderr and "remove the xfail" in result.stderr
    assert tele340(db, summary["run_id"]) == {"XPASS"}


def test_warn_mode_only_warns(tmp_path):
    path = experiment(tmp_path, "mlp", {"expect": ["TELE-340"]})
    result = CliRunner().invoke(cli, ["run", path, "--registry", str(tmp_path / "runs.db"),
                                      "--wiring-failures", "warn", "--quiet"])
    assert result.exit_code == 0
    assert "FAIL" in result.stderr


@pytest.fixture
def two_runs(tmp_path):
    esper_run(tmp_path, "lstm", {"expect": ["TELE-340"]})
    esper_run(tmp_path, "mlp", {"xfail": {"TELE-340": "mlp has no memory"}})
    return tmp_path / "runs.db"


def test_esper_wiring_table_json_and_markdown(two_runs):
    runner = CliRunner()
    table = runner.invoke(cli, ["wiring", "--registry", str(two_runs)])
    assert table.exit_code == 0 and "lstm_h_norm" in table.stdout and "XFAIL" in table.stdout
    data = json.loads(runner.invoke(cli, ["wiring", "wired_lstm-1", "--registry", str(two_runs),
                                          "--json"]).stdout)
    assert data[0]["counts"]["PASS"] >= 6
    markdown = runner.invoke(cli, ["wiring", "--markdown", "--registry", str(two_runs)]).stdout
    row = next(line for line in markdown.splitlines() if line.startswith("| TELE-340 "))
    assert "| XFAIL |" in row and "1/2" in row and "mlp has no memory" in row
