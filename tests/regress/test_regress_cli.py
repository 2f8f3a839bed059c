"""`esper regress` end to end on a small suite of real runs (digits, a few epochs): baselines
recorded, the suite passing against them, a degraded experiment failing with its metric and
its wiring field named, and --update-baselines rewriting only the file that changed: one
sequence of four suite runs (two experiments each).
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from esper.cli import cli
from esper.registry import Registry
from esper.simic.env_loop import EnvLoop, TrainingSummary
from tests.regress.suite_files import suite_document, write_experiment

NO_MLFLOW = {"mlflow": False}
HEURISTIC = suite_document(
    "heur", 4, {"final_val_accuracy": {"direction": "higher", "threshold": 1,
                                       "absolute_tolerance": 2}}, tracking=NO_MLFLOW)


def lstm(terminal_accuracy: float = 0.05, probes: tuple[str, ...] = ("lstm_health",)
         ) -> dict[str, Any]:
    """The LSTM experiment; its degradation is a broken reward weight and the LSTM-health
    probe switched off."""
    return suite_document(
        "lstm", 5, {"mean_episode_return": {"direction": "higher", "absolute_tolerance": 0.05},
                    "final_val_accuracy": {"direction": "higher", "absolute_tolerance": 2}},
        policy={"type": "lstm", "feature_dim": 16, "hidden_dim": 16}, ppo={"update_epochs": 1},
        reward={"mode": "shaped", "weights": {"terminal_accuracy": terminal_accuracy}},
        telemetry={"probes": list(probes)}, wiring={"expect": ["TELE-340"]}, tracking=NO_MLFLOW)


@dataclass
class SuiteRuns:
    suite: Path
    registry: Path
    recorded: Result  # --update-baselines on a suite without baselines
    first_baselines: dict[str, tuple[int, str]]  # file -> (mtime_ns, text)
    passed: Result  # against its fresh baselines, --json --report --junit
    degraded: Result  # lstm degraded, --junit
    updated: Result  # --update-baselines on the degraded suite

    def file(self, name: str) -> Path:
        return self.suite / "baselines" / f"{name}.json"


def _regress(*args: str) -> Result:
    return CliRunner().invoke(cli, ["regress", *args], catch_exceptions=False)


def _run_the_sequence(root: Path) -> SuiteRuns:
    suite, db = root / "smoke", root / "runs.db"
    suite.mkdir()
    write_experiment(suite, HEURISTIC)
    write_experiment(suite, lstm())
    common = (str(suite), "--registry", str(db))
    recorded = _regress(*common, "--update-baselines")
    first = {p.stem: (p.stat().st_mtime_ns, p.read_text())
             for p in (suite / "baselines").glob("*.json")}
    passed = _regress(*common, "--json", "--report", str(root / "passed.md"),
                      "--junit", str(root / "passed.xml"))
    write_experiment(suite, lstm(terminal_accuracy=-0.5, probes=()))
    degraded = _regress(*common, "--junit", str(root / "degraded.xml"))
    updated = _regress(*common, "--update-baselines")
    return SuiteRuns(suite, db, recorded, first, passed, degraded, updated)


def _update_records_a_baseline_per_experiment(runs: SuiteRuns) -> None:
    assert runs.recorded.exit_code == 0, runs.recorded.output
    assert sorted(runs.first_baselines) == ["heur", "lstm"]
    lstm = json.loads(runs.first_baselines["lstm"][1])
    assert lstm["wiring"]["TELE-340 lstm_h_norm"] == "PASS"
    assert set(lstm["metrics"]) == {"mean_episode_return", "final_val_accuracy"}
    assert all(isinstance(v, float) for v in lstm["metrics"].values())
    assert "| heur | PASS |" in runs.recorded.stdout and "| written |" in runs.recorded.stdout


def _the_suite_passes_against_its_fresh_baselines(runs: SuiteRuns) -> None:
    assert runs.passed.exit_code == 0, runs.passed.output
    result = json.loads(runs.passed.stdout)
    assert result["passed"] is True and result["regressions"] == []
    metrics = [m for e in result["experiments"] for m in e["metrics"]]
    assert len(metrics) == 3 and all(m["delta"] == 0.0 and m["passed"] for m in metrics)
    assert all(e["baseline"] == "compared" for e in result["experiments"])
    report = (runs.suite.parent / "passed.md").read_text()
    assert report.startswith("# Regression suite `smoke`: PASSED")
    assert re.search(r"\n\| final_val_accuracy \| higher: >= 1; tolerance 2 \| ([0-9.]+) \| \1 \| "
                     r"\+0 \| \+0\.0% \| PASS \|\n", report), report  # the heur delta row
    junit = ET.parse(runs.suite.parent / "passed.xml").getroot()
    suites = junit.findall("testsuite")
    assert [s.get("name") for s in suites] == ["heur", "lstm"]
    assert [s.get("tests") for s in suites] == ["4", "5"]  # run, baseline, metrics, wiring
    assert junit.findall(".//failure") == []
    assert_ant_junit_shape(junit)
    assert (junit.get("tests"), junit.get("failures"), junit.get("errors")) == ("9", "0", "0")


def assert_ant_junit_shape(root: ET.Element) -> None:
    """What the Ant JUnit schema requires: root totals; per suite its attributes and children in
    order (properties, testcases, system-out, system-err); per case its time; per failure or
    error a message and a type."""
    suites = root.findall("testsuite")
    for name in ("tests", "failures", "errors"):
        assert int(root.get(name)) == sum(int(s.get(name)) for s in suites)
    assert float(root.get("time")) == pytest.approx(sum(float(s.get("time")) for s in suites))
    for index, suite in enumerate(suites):
        assert suite.get("id") == str(index) and suite.get("package") and suite.get("hostname")
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", suite.get("timestamp"))
        assert float(suite.get("time")) >= 0
        tags = [child.tag for child in suite]
        assert tags == ["properties", *["testcase"] * (len(tags) - 3), "system-out", "system-err"]
        assert int(suite.get("tests")) == len(tags) - 3
        for case in suite.iter("testcase"):
            assert float(case.get("time")) >= 0 and case.get("name") and case.get("classname")
            for problem in (*case.findall("failure"), *case.findall("error")):
                assert problem.get("message") and problem.get("type")


def _a_degraded_experiment_fails_naming_the_metric_and_the_wiring_field(
        runs: SuiteRuns) -> None:
    assert runs.degraded.exit_code == 1
    error = runs.degraded.stderr
    assert "\nError: 7 regressions in suite smoke:\n" in error  # the metric, 6 TELE-340 fields
    assert "Traceback" not in runs.degraded.output
    assert "lstm: metric mean_episode_return = " in error
    assert "more than the tolerance 0.05" in error
    assert "lstm: wiring TELE-340 lstm_h_norm: PASS -> SKIP (no longer passes: " \
           "probe lstm_health is off)" in error
    assert "heur:" not in error
    assert "| heur | PASS |" in runs.degraded.stdout
    assert "| lstm | **FAIL** |" in runs.degraded.stdout
    assert re.search(r"\n\| mean_episode_return \| higher: tolerance 0\.05 \| [0-9.-]+ \| "
                     r"[0-9.-]+ \| -[0-9.]+ \| -[0-9.]+% \| \*\*FAIL\*\* \|\n",
                     runs.degraded.stdout)  # a negative delta, failed
    degraded = ET.parse(runs.suite.parent / "degraded.xml").getroot()
    assert_ant_junit_shape(degraded)
    assert (degraded.get("failures"), degraded.get("errors")) == ("2", "0")
    failures = {case.get("name"): case.find("failure") for case in degraded.iter("testcase")
                if case.get("classname") == "smoke.lstm"}
    assert failures["metric mean_episode_return"].get("type") == "esper.regress.metric"
    assert failures["metric final_val_accuracy"] is None and failures["baseline"] is None
    wiring = failures["wiring"]
    assert wiring is not None and "TELE-340 lstm_c_norm" in (wiring.text or "")
    assert wiring.get("type") == "esper.regress.wiring"


def _update_rewrites_only_the_baseline_that_changed(runs: SuiteRuns) -> None:
    assert runs.updated.exit_code == 0, runs.updated.output
    heur = runs.file("heur")
    assert (heur.stat().st_mtime_ns, heur.read_text()) == runs.first_baselines["heur"]
    lstm = json.loads(runs.file("lstm").read_text())
    before = json.loads(runs.first_baselines["lstm"][1])
    assert not any(key.startswith("TELE-340") for key in lstm["wiring"])
    assert lstm["metrics"]["mean_episode_return"] < before["metrics"]["mean_episode_return"] - 0.05
    assert "| heur | PASS |" in runs.updated.stdout
    assert "unchanged |" in runs.updated.stdout and "written |" in runs.updated.stdout


def _suite_runs_are_ordinary_runs_tagged_with_the_suite(runs: SuiteRuns) -> None:
    with Registry.open(runs.registry, create=False) as registry:
        tagged = registry.runs(tag="esper.suite=smoke", limit=100)
        assert len(tagged) == 8 == len(registry.runs(limit=100))
        assert {r.experiment for r in tagged} == {"heur", "lstm"}
        assert all(r.status.value == "FINISHED" and r.mlflow_run_id is None for r in tagged)


def test_record_pass_degrade_and_update_a_suite(tmp_path: Path) -> None:
    """The whole sequence in one test: under xdist a shared fixture would run on every worker
    that gets one of its tests, and these eight runs are the cost of this module."""
    runs = _run_the_sequence(tmp_path)
    _update_records_a_baseline_per_experiment(runs)
    _the_suite_passes_against_its_fresh_baselines(runs)
    _a_degraded_experiment_fails_naming_the_metric_and_the_wiring_field(runs)
    _update_rewrites_only_the_baseline_that_changed(runs)
    _suite_runs_are_ordinary_runs_tagged_with_the_suite(runs)


def test_a_bad_suite_is_a_one_line_error_with_exit_code_2(tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_text("name: x\n")
    result = CliRunner().invoke(cli, ["regress", str(tmp_path)])
    assert result.exit_code == 2
    assert result.stderr == (f"Error: {tmp_path / 'x.yaml'}: experiment 'x' has no regression: "
                             "block (a suite experiment declares the metrics it is checked on)\n")


def test_an_unreadable_baseline_fails_before_anything_is_trained(tmp_path: Path) -> None:
    write_experiment(tmp_path, HEURISTIC)
    (tmp_path / "baselines").mkdir()
    (tmp_path / "baselines" / "heur.json").write_text("{not json")
    registry = tmp_path / "runs.db"
    result = CliRunner().invoke(cli, ["regress", str(tmp_path), "--registry", str(registry)])
    assert result.exit_code == 2
    assert "heur.json: not a baseline file" in result.stderr
    assert not registry.exists()  # no run was started


def test_a_crashing_run_is_a_regression_and_the_suite_goes_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    suite, db = tmp_path / "crashy", tmp_path / "runs.db"
    suite.mkdir()
    write_experiment(suite, {**HEURISTIC, "name": "boom"})
    write_experiment(suite, HEURISTIC)
    train = EnvLoop.run

    def crash_boom(loop: EnvLoop) -> TrainingSummary:  # a fault in training, provoked
        if loop.spec.name == "boom":
            raise RuntimeError("provoked fault")
        return train(loop)

    monkeypatch.setattr(EnvLoop, "run", crash_boom)
    result = _regress(str(suite), "--registry", str(db), "--update-baselines",
                      "--junit", str(tmp_path / "junit.xml"))
    assert result.exit_code == 1
    assert result.stderr.endswith("Error: 1 regression in suite crashy:\n"
                                  "boom: run crashed: RuntimeError: provoked fault\n")
    assert "| boom | **FAIL** | crashed | - | - | missing |" in result.stdout
    assert sorted(p.name for p in (suite / "baselines").iterdir()) == ["heur.json"]
    with Registry.open(db, create=False) as registry:
        (boom,) = registry.runs(experiment="boom")
    assert boom.status.value == "FAILED" and "provoked fault" in (boom.traceback or "")
    junit = ET.parse(tmp_path / "junit.xml").getroot()
    crashed = junit.find("testsuite[@name='boom']")
    assert crashed is not None and (crashed.get("errors"), crashed.get("failures")) == ("1", "0")
    error = crashed.find("testcase[@name='run']/error")
    assert error is not None and error.get("message") == "run crashed: RuntimeError: provoked fault"
    assert error.get("type") == "RuntimeError"
    assert_ant_junit_shape(junit)


@pytest.mark.parametrize("option", ["--report", "--junit"])
def test_a_report_file_that_cannot_be_written_is_refused_before_anything_is_trained(
        tmp_path: Path, option: str) -> None:
    write_experiment(tmp_path, HEURISTIC)
    registry, target = tmp_path / "runs.db", tmp_path / "missing" / "out.file"
    result = CliRunner().invoke(cli, ["regress", str(tmp_path), "--registry", str(registry),
                                      option, str(target)])
    assert result.exit_code == 2, result.output
    assert (f"Invalid value for '{option}': cannot write {target}: {target.parent} is not a "
            "directory") in result.stderr
    assert not registry.exists()  # no run was started
