"""Wiring opportunities on real runs: an expected field whose carrying event never happened is
NO_OPPORTUNITY (not a failure, counted and named by `esper run` and `esper wiring`); a field that
had its chance and was missing stays FAIL."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from esper.cli import cli
from esper.experiment.runner import run
from esper.registry import Registry
from tests.growing_spec import growing_spec

QUICKSTART = Path(__file__).parents[2] / "experiments" / "quickstart.yaml"


@pytest.fixture(scope="module")
def short_quickstart(tmp_path_factory):
    """The quickstart cut to 4 epochs: too short for the heuristic to germinate a seed."""
    db = tmp_path_factory.mktemp("quickstart") / "runs.db"
    result = CliRunner().invoke(cli, [
        "run", str(QUICKSTART), "--set", "training.batches=1", "--set", "training.episode_length=4",
        "--no-mlflow", "--registry", str(db), "--json"])
    return result, db


def test_the_short_quickstart_exits_0_and_counts_the_fields_without_opportunity(short_quickstart):
    result, _ = short_quickstart
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["seeds"]["germinated"] == 0
    assert summary["wiring"]["FAIL"] == 0 and summary["wiring"]["NO_OPPORTUNITY"] == 25
    assert [line.split()[0] for line in summary["wiring_no_opportunity"]] == [
        "TELE-430", "TELE-410", "TELE-420"]


def test_esper_wiring_names_the_fields_without_opportunity(short_quickstart):
    _, db = short_quickstart
    runner = CliRunner()
    table = runner.invoke(cli, ["wiring", "--registry", str(db)]).stdout
    assert "25 NO_OPPORTUNITY" in table
    assert "not exercised: TELE-430 (14 fields): no opportunity: measured only when a slot holds a seed" in table
    markdown = runner.invoke(cli, ["wiring", "--markdown", "--registry", str(db)]).stdout
    row = next(line for line in markdown.splitlines() if line.startswith("| TELE-430 "))
    assert "| NO_OPPORTUNITY | 0/1 |" in row
    assert "3 had no opportunity to be observed" in markdown


@pytest.fixture(scope="module")
def grown(tmp_path_factory):
    """A run that germinates and fossilises seeds but prunes none, expecting all three events."""
    db = tmp_path_factory.mktemp("grown") / "runs.db"
    spec = growing_spec(wiring={"expect": ["TELE-140", "TELE-142", "TELE-143"]},
                        tracking={"mlflow": False})
    result = run(spec, registry=db)
    with Registry.open(db) as registry:
        rows = registry.wiring(result.record.run_id)
    return result, db, {row["field"]: row for row in rows}


def test_an_expected_field_whose_event_never_happened_is_no_opportunity(grown):
    result, _, rows = grown
    assert result.summary.seeds_fossilized >= 1 and result.summary.seeds_pruned == 0
    assert rows["fossilized_blueprint"]["outcome"] == rows["germinated_params"]["outcome"] == "PASS"
    assert rows["pruned_reason"]["outcome"] == "NO_OPPORTUNITY"
    assert "a seed is pruned (SEED_PRUNED)" in rows["pruned_reason"]["reason"]
    assert not result.wiring_failed


def test_markdown_counts_runs_observed_of_the_runs_for_a_skipped_field(grown):
    _, db, rows = grown
    assert rows["from_stage"]["outcome"] == "SKIP" and rows["from_stage"]["observed"]
    markdown = CliRunner().invoke(cli, ["wiring", "--markdown", "--registry", str(db)]).stdout
    row = next(line for line in markdown.splitlines() if line.startswith("| TELE-141 "))
    assert "| SKIP | 1/1 |" in row
