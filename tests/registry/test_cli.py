"""esper runs / show / events through click's CliRunner on a real runs.db."""

from __future__ import annotations

import io
import json
import shlex
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from esper.cli import cli
from esper.leyline.codec import encode_event
from esper.registry import Registry, RunStatus, render
from esper.registry.run_table import run_rows

from .builders import make_events, new_run


@pytest.fixture
def filled(db_path: Path) -> dict[str, str]:
    """Three runs: exp-1 FINISHED with 30 events, exp-2 FAILED, other-1 RUNNING (this process)."""
    with Registry.open(db_path) as registry:
        first = registry.create_run(new_run("exp", tags={"kind": "baseline"}))
        registry.write_events(make_events(first.run_id, 30))
        registry.finish_run(first.run_id, RunStatus.FINISHED)
        second = registry.create_run(new_run("exp"))
        registry.finish_run(second.run_id, RunStatus.FAILED, exit_reason="ValueError: bad",
                            traceback="Traceback (most recent call last):\nValueError: bad\n")
        third = registry.create_run(new_run("other"))
    return {"exp-1": first.run_id, "exp-2": second.run_id, "other-1": third.run_id}


def invoke(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(cli, list(args), env=env)


def test_runs_lists_newest_first_with_status_and_event_counts(db_path, filled):
    result = invoke("runs", "--registry", str(db_path))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["id", "name", "experiment", "kind", "status", "started",
                                "duration", "events"]
    assert [line.split()[1] for line in lines[1:]] == ["other-1", "exp-2", "exp-1"]
    assert "FINISHED" in lines[3] and lines[3].rstrip().endswith("30")
    assert "RUNNING" in lines[1] and "so far" in lines[1]


def test_runs_never_shortens_the_run_id_on_a_narrow_terminal(db_path, filled):
    """A 40-column terminal squeezes the table: the other columns fold or shorten, the id
    column never (esper runs prints to a 200-column console when stdout is not a terminal,
    so the table is rendered here on a narrow one)."""
    with Registry.open(db_path) as registry:
        table = render.runs_table(run_rows(registry, registry.runs(), ()))
    narrow = render._LiteralConsole(width=40, file=io.StringIO())
    narrow.print(table)
    printed = narrow.file.getvalue()
    assert "…" in printed  # the width did squeeze the table
    for run_id in filled.values():
        assert run_id in printed


def test_runs_json_filters_and_the_environment_variable(db_path, filled):
    env = {"ESPER_REGISTRY": str(db_path)}
    rows = json.loads(invoke("runs", "--json", env=env).output)
    assert [r["name"] for r in rows] == ["other-1", "exp-2", "exp-1"]
    assert rows[2]["event_count"] == 30 and rows[2]["status"] == "FINISHED"
    assert rows[2]["tags"] == {"kind": "baseline"} and "config" not in rows[2]

    def names(*args: str) -> list[str]:
        result = invoke("runs", "--json", *args, env=env)
        assert result.exit_code == 0, result.output
        return [r["name"] for r in json.loads(result.output)]

    assert names("--status", "failed") == ["exp-2"]
    assert names("--experiment", "exp", "--limit", "1") == ["exp-2"]
    assert names("--name", "other-1") == ["other-1"]
    assert names("--tag", "kind=baseline") == ["exp-1"]
    assert names("--since", "2999-01-01") == []


def test_show_prints_status_timings_counts_and_config(db_path, filled):
    result = invoke("show", "exp-1", "--registry", str(db_path))
    assert result.exit_code == 0, result.output
    for expected in (filled["exp-1"], "FINISHED", "duration", "events by type",
                     "BATCH_COMPLETED", '"lr": 0.01', "config sha256"):
        assert expected in result.output
    failed = invoke("show", "exp-2", "--registry", str(db_path)).output
    assert "ValueError: bad" in failed and "Traceback (most recent call last):" in failed


def test_show_json_has_the_summary(db_path, filled):
    result = invoke("show", filled["exp-1"][:9], "--json", "--registry", str(db_path))
    summary = json.loads(result.output)
    assert summary["run_id"] == filled["exp-1"] and summary["config"]["lr"] == 0.01
    assert summary["event_counts"] == {"BATCH_COMPLETED": 10, "GOVERNOR_ROLLBACK": 10,
                                       "SEED_STAGE_CHANGED": 10}
    assert summary["metrics"] == {} and summary["sinks"] == []


def test_events_jsonl_is_the_stream_in_order_with_filters(db_path, filled):
    run_id = filled["exp-1"]
    result = invoke("events", "exp-1", "--format", "jsonl", "--registry", str(db_path))
    assert result.exit_code == 0, result.output
    expected = [encode_event(e) for e in make_events(run_id, 30)]
    assert result.output.splitlines() == expected
    filtered = invoke("events", "exp-1", "--format", "jsonl", "--type", "batch_completed",
                      "--env", "0", "--limit", "2", "--registry", str(db_path))
    assert [json.loads(line)["seq"] for line in filtered.output.splitlines()] == [0, 12]


def test_events_table(db_path, filled):
    result = invoke("events", "exp-1", "--limit", "3", "--registry", str(db_path))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:4] == ["seq", "time", "type", "severity"]
    assert len(lines) == 4 and "SEED_STAGE_CHANGED" in lines[2]


def test_an_unknown_run_is_an_error_listing_candidates(db_path, filled):
    for command in ("show", "events"):
        result = invoke(command, "exp-3", "--registry", str(db_path))
        assert result.exit_code == 2
        assert result.output.startswith("Error: no run matches 'exp-3'; did you mean: ")
        assert "exp-1" in result.output and "exp-2" in result.output


def test_an_ambiguous_prefix_is_an_error_listing_the_runs(db_path):
    with Registry.open(db_path) as registry:
        runs = [registry.create_run(new_run()) for _ in range(40)]
    prefix = next(r.run_id[0] for r in runs if sum(o.run_id[0] == r.run_id[0] for o in runs) > 1)
    result = invoke("show", prefix, "--registry", str(db_path))
    assert result.exit_code == 2
    assert result.output.startswith(f"Error: run id prefix '{prefix}' matches ")


def test_a_missing_or_foreign_registry_is_a_one_line_error(tmp_path):
    missing = invoke("runs", "--registry", str(tmp_path / "none.db"))
    assert missing.exit_code == 1
    assert missing.output.startswith(f"Error: no registry at {tmp_path / 'none.db'}")
    foreign = tmp_path / "photo.jpg"
    foreign.write_bytes(b"\xff\xd8\xff\xe0 not a database")
    result = invoke("runs", "--registry", str(foreign))
    assert result.exit_code == 1
    assert result.output == (f"Error: {foreign} is not an SQLite database; pass --registry PATH "
                             "(or set ESPER_REGISTRY) to use another file\n")
    assert "Traceback" not in result.output


def test_a_registry_damaged_inside_is_a_clear_error_not_a_traceback(db_path):
    with Registry.open(db_path) as registry:
        run_id = registry.create_run(new_run("exp")).run_id
        registry.write_events(make_events(run_id, 20_000))
    # The file opens (header, schema and runs are intact) but an index the summary reads is
    # garbage, as after a disk fault.
    with sqlite3.connect(db_path) as conn:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        (root,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE type = 'index' "
                               "AND tbl_name = 'events' AND sql LIKE '%event_type%'").fetchone()
    with db_path.open("r+b") as f:
        f.seek((root - 1) * page_size)
        f.write(b"\xff" * page_size)
    result = invoke("show", run_id, "--registry", str(db_path))
    assert result.exit_code != 0
    assert "Error: the registry is not a usable SQLite database (database disk image is " \
           "malformed); restore it from a backup" in result.output
    assert "Traceback" not in result.output and not isinstance(result.exception, sqlite3.Error)


def test_a_reader_that_stops_early_is_not_an_error(db_path):
    with Registry.open(db_path) as registry:
        run_id = registry.create_run(new_run("exp")).run_id
        registry.write_events(make_events(run_id, 20_000))  # megabytes: more than a pipe holds
    esper = f"{shlex.quote(sys.executable)} -c 'from esper.cli import main; main()'"
    piped = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {esper} events {run_id} --registry "
                       f"{shlex.quote(str(db_path))} --limit 20000 --format jsonl | head -1"],
        capture_output=True, text=True, timeout=120,
    )
    assert piped.returncode == 0, piped.stderr
    assert piped.stderr == "" and json.loads(piped.stdout)["seq"] == 0


def test_wiring_of_runs_that_have_none_says_so(db_path):
    with Registry.open(db_path) as registry:
        killed = registry.create_run(new_run("exp"))
        registry.finish_run(killed.run_id, RunStatus.KILLED, exit_reason="SIGINT")
    latest = invoke("wiring", "--registry", str(db_path))
    assert latest.exit_code == 1
    assert latest.output == (f"Error: no run in {db_path} has wiring outcomes yet: they are "
                             "evaluated when `esper run` ends (runs killed or crashed have "
                             "none)\n")
    named = invoke("wiring", killed.run_id, "--markdown", "--registry", str(db_path))
    assert named.exit_code == 1
    assert named.output == (f"Error: run {killed.run_id} (exp-1) has no wiring outcomes: they "
                            "are evaluated when a run ends, and this one is KILLED\n")
