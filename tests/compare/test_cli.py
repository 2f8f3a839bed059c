"""`esper compare` through click: formats, the plot, errors, experiment files as references."""

from __future__ import annotations

import csv
import io
import json
import shutil

import matplotlib.image
import pytest
import yaml
from click.testing import CliRunner

from esper.cli import cli
from esper.compare.report import Comparison, compare
from esper.registry import Registry
from tests.compare.conftest import cmp_document


def invoke(runs, *args: str):
    return CliRunner().invoke(cli, ["compare", *args, "--registry", str(runs.registry_path)])


def test_json_output_round_trips_to_the_comparison(runs):
    refs = [f"group:{runs.group_a}", runs.twin.run_id, f"group:{runs.group_b}"]
    result = invoke(runs, *refs, "--format", "json")
    assert result.exit_code == 0, result.output
    with runs.open() as registry:
        expected = compare(registry, refs)
    assert Comparison.from_dict(json.loads(result.output)) == expected
    assert expected.statistics and expected.metrics and expected.config


def test_csv_is_one_value_per_line(runs):
    result = invoke(runs, runs.first.run_id, runs.second.run_id, "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert set(rows[0]) == {"section", "key", "side", "field", "value"}
    seeds = [(r["side"], r["value"]) for r in rows
             if r["section"] == "config" and r["key"] == "seed"]
    assert seeds == [(runs.first.run_id, "1"), (runs.second.run_id, "2")]
    with runs.open() as registry:
        accuracy = {m.name: m for m in compare(registry, [runs.first.run_id, runs.second.run_id])
                    .metrics}["final_val_accuracy"]
    shown = {(r["side"], r["field"]): r["value"] for r in rows
             if r["section"] == "metrics" and r["key"] == "final_val_accuracy"}
    assert float(shown[runs.second.run_id, "delta"]) == pytest.approx(accuracy.deltas[1])


def test_markdown_and_table_show_the_sections_that_have_something_to_say(runs):
    markdown = invoke(runs, runs.first.run_id, runs.twin.run_id, "--format", "md")
    table = invoke(runs, runs.first.run_id, runs.twin.run_id)
    assert markdown.exit_code == table.exit_code == 0
    assert "### outcome metrics" in markdown.output and "| final_val_accuracy |" in markdown.output
    assert "### config" not in markdown.output  # same config: nothing to say
    assert "identical" in markdown.output and "identical" in table.output
    assert "training.envs" not in table.output  # a key both runs share
    assert "training.envs" in invoke(runs, runs.first.run_id, runs.twin.run_id, "--all").output


def test_plot_writes_a_png(runs, tmp_path):
    target = tmp_path / "compare.png"
    result = invoke(runs, f"group:{runs.group_a}", f"group:{runs.group_b}", "--plot",
                    str(target), "--format", "md")
    assert result.exit_code == 0, result.output
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    height, width, _ = matplotlib.image.imread(target).shape
    assert width > height > 200


def test_a_plot_into_a_missing_directory_is_refused_before_the_report(runs, tmp_path):
    target = tmp_path / "nowhere" / "compare.png"
    result = invoke(runs, f"group:{runs.group_a}", f"group:{runs.group_b}", "--plot",
                    str(target))
    assert result.exit_code == 2
    assert result.output == (f"Error: cannot write the plot to {target}: {target.parent} is "
                             "not a directory\n")  # one line, and no table printed first


def test_a_run_compared_with_itself_is_refused(runs):
    prefix = runs.first.run_id[:6]
    result = invoke(runs, runs.first.run_id, prefix)
    assert result.exit_code == 2
    assert result.output == (f"Error: {runs.first.run_id} and {prefix} are the same run "
                             f"({runs.first.run_id}): nothing to compare\n")


@pytest.mark.parametrize("args, message", [
    (["only-one"], "Error: compare needs at least two runs or groups, got 1: only-one"),
    (["group:ffff", "group:"], "Error: no replicate group 'ffff' in "),
    (["nope", "nope2"], "Error: no run matches 'nope'"),
])
def test_bad_references_exit_2_with_one_line(runs, args, message):
    result = invoke(runs, *args)
    assert result.exit_code == 2
    assert result.output.startswith(message) and "Traceback" not in result.output


def test_the_heuristic_vs_learned_head_to_head_is_one_command(tmp_path):
    registry = tmp_path / "runs.db"
    shrink = ["task.max_train=128", "task.max_val=64", "training.envs=1", "training.batches=1",
              "training.episode_length=3"]
    result = CliRunner().invoke(cli, [
        "compare", "experiments/seed_telemetry_heuristic.yaml", "experiments/seed_telemetry.yaml",
        "--no-mlflow", "--format", "json", "--registry", str(registry),
        *(arg for override in shrink for arg in ("--set", override))])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [side["label"] for side in data["sides"]] == [
        "experiments/seed_telemetry_heuristic.yaml", "experiments/seed_telemetry.yaml"]
    progress = result.stderr.splitlines()  # each file as it starts and ends, and its epochs
    assert progress[0] == "[1/2] running experiments/seed_telemetry_heuristic.yaml (1 run)"
    assert f"[2/2] experiments/seed_telemetry.yaml: {data['sides'][1]['run_ids'][0]}" in progress
    assert any(line.startswith("esper: batch 1/1 epoch 3/3") for line in progress)
    assert [side["seeds"] for side in data["sides"]] == [[3], [3]]
    config = {row["key"]: row["values"] for row in data["config"]}
    assert config["policy.type"] == ["heuristic", "lstm"]
    metrics = {row["name"]: row["values"] for row in data["metrics"]}
    assert metrics["final_policy_loss"][0] is None and metrics["final_policy_loss"][1] is not None
    # wiring outcomes that differ: the PPO fields are judged only for the learned policy
    wiring = {row["key"]: row["values"] for row in data["wiring"]}
    assert wiring["TELE-300 ppo_policy_loss"] == ["SKIP", "PASS"]
    assert all(a != b for a, b in wiring.values())


def test_a_bad_run_reference_beside_an_experiment_file_fails_before_the_file_runs(runs,
                                                                                  tmp_path):
    registry = tmp_path / "runs.db"
    shutil.copy(runs.registry_path, registry)
    spec_file = tmp_path / "cmp.yaml"
    spec_file.write_text(yaml.safe_dump(cmp_document()))
    with Registry.open(registry, create=False) as before:
        count = len(before.runs())
    result = CliRunner().invoke(cli, ["compare", str(spec_file), "nope", "--registry",
                                      str(registry)])
    assert result.exit_code == 2
    assert result.output.startswith("Error: no run matches 'nope'")
    with Registry.open(registry, create=False) as after:
        assert len(after.runs()) == count  # the experiment file was not run


@pytest.mark.parametrize("option", [["--set", "training.envs=4"], ["--no-mlflow"]])
def test_options_for_experiment_files_without_one_are_a_usage_error(tmp_path, option):
    # silently ignored, --set would leave the user believing the runs were made with it
    registry = tmp_path / "runs.db"
    result = CliRunner().invoke(cli, ["compare", "run-a", "run-b", *option,
                                      "--registry", str(registry)])
    assert result.exit_code == 2
    assert "none of the REFs is one (an existing .yaml or .yml file)" in result.output
    assert not registry.exists()


def test_an_experiment_file_alone_is_refused_before_it_runs(tmp_path):
    spec_file = tmp_path / "cmp.yaml"
    spec_file.write_text(yaml.safe_dump(cmp_document()))
    registry = tmp_path / "runs.db"
    result = CliRunner().invoke(cli, ["compare", str(spec_file), "--registry", str(registry)])
    assert result.exit_code == 2
    assert result.output == (f"Error: compare needs at least two runs or groups, got 1: "
                             f"{spec_file}; e.g. esper compare RUN_A RUN_B\n")
    assert not registry.exists()  # nothing was run


@pytest.mark.parametrize("args", [["--format", "csv"], ["--format", "md"],
                                  ["--plot", "ranking.png"]])
def test_a_sweep_ranking_refuses_the_formats_it_cannot_write(tmp_path, args):
    """They were ignored: a rich table came out where CSV was asked for, and no PNG."""
    result = CliRunner().invoke(cli, ["compare", "sweep:x", *args, "--registry",
                                      str(tmp_path / "runs.db")])
    assert result.exit_code == 2
    assert ("Error: sweep:x prints the sweep's ranking as a table or as JSON (--json); "
            "--format md, --format csv and --plot compare runs and groups") in result.output


def test_a_multi_line_config_value_stays_in_its_markdown_row(tmp_path):
    from esper.experiment.runner import run
    from tests.spec_factory import tiny_spec

    registry = tmp_path / "runs.db"
    ids = [run(tiny_spec(description=text, training={"envs": 1, "batches": 1,
                                                      "episode_length": 2},
                         tracking={"mlflow": False}), registry=registry).record.run_id
           for text in ("line one\nline two", "other")]
    result = CliRunner().invoke(cli, ["compare", *ids, "--format", "md", "--registry",
                                      str(registry)])
    assert result.exit_code == 0, result.output
    assert "| description | line one<br>line two | other |\n" in result.output


def test_a_reference_beside_an_experiment_file_is_given_in_full(tmp_path):
    """A short id prefix typed beside an experiment FILE is resolved before the file trains and
    compared by its full id: the runs the file records could share the prefix."""
    from esper.compare.experiments import resolve_references

    registry = tmp_path / "runs.db"
    tiny = ("training.batches=1", "training.episode_length=2", "task.max_train=100",
            "task.max_val=50", "telemetry.probes=[]")
    first = CliRunner().invoke(cli, ["run", "experiments/quickstart.yaml", "--no-mlflow", "-q",
                                     "--registry", str(registry),
                                     *(a for o in tiny for a in ("--set", o))])
    assert first.exit_code == 0, first.output
    with Registry.open(registry, create=False) as opened:
        (run,) = opened.runs()
    refs = resolve_references([run.run_id[:4], "experiments/quickstart.yaml"], overrides=tiny,
                              registry=registry, mlflow=False)
    assert refs[0] == run.run_id and refs[1] != run.run_id
