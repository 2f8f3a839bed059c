"""User text (run names, tags, messages, tracebacks) is shown literally by every command that
renders it: rich markup is not read, control characters are shown as escapes."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from esper.cli import cli
from esper.registry import Registry, RunStatus
from esper.registry.render import visible
from tests.spec_factory import tiny_document

from .builders import make_events, new_run

HOSTILE_TAGS = {"note": "[/]", "colour": "\x1b[31mred\x1b[0m", "link": "[link=http://x]y[/link]"}
LEGACY_NAME = "two\nlines \x1b[31mred\x1b[0m \u202eevil\x07"  # written by an older esper
ESCAPED_LEGACY_NAME = "two\\nlines \\x1b[31mred\\x1b[0m \\u202eevil\\x07"
FAILURE = "ValueError: bad [/] value \x1b[2J"


@dataclass(frozen=True)
class Hostile:
    registry: Path
    names: dict[str, str]  # run name -> run id
    legacy: str  # id of the run named LEGACY_NAME


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Hostile:
    """One real `esper run --name '[/]'` with hostile tags and description, runs named
    'test [wip]', '[bold red]x' and ':thumbs_up:' that failed with a hostile traceback, and a
    run whose name has control characters (as an older esper let it be written)."""
    root = tmp_path_factory.mktemp("hostile")
    registry_path = root / "runs.db"
    spec = root / "tiny.yaml"
    spec.write_text(yaml.safe_dump(tiny_document(
        description="[/] notes \x1b[1m", telemetry={"probes": []},
        tracking={"mlflow": False, "tags": HOSTILE_TAGS})))
    result = CliRunner().invoke(cli, ["run", str(spec), "--name", "[/]", "--registry",
                                      str(registry_path), "--quiet", "--wiring-failures=warn"])
    assert result.exit_code == 0, result.output
    with Registry.open(registry_path) as registry:
        names = {"[/]": registry.resolve("[/]").run_id}
        for name in ("test [wip]", "[bold red]x", ":thumbs_up:"):
            run = registry.create_run(new_run("exp", name=name, tags=HOSTILE_TAGS))
            events = make_events(run.run_id, 6)
            events[0] = events[0]._replace(message="[/] \x1b[31mmessage")
            registry.write_events(events)
            registry.finish_run(run.run_id, RunStatus.FAILED, exit_reason=FAILURE,
                                traceback=f"Traceback (most recent call last):\n{FAILURE}\n")
            names[name] = run.run_id
        legacy = registry.create_run(new_run("exp", name="legacy")).run_id
    with sqlite3.connect(registry_path) as conn:
        conn.execute("UPDATE runs SET name = ? WHERE run_id = ?", [LEGACY_NAME, legacy])
    return Hostile(registry_path, names, legacy)


def esper(hostile: Hostile, *args: str) -> Result:
    result = CliRunner().invoke(cli, [*args, "--registry", str(hostile.registry)])
    assert "\x1b" not in result.output and "\x07" not in result.output, result.output
    assert "Traceback (most recent call last)" not in result.stderr
    return result


def test_runs_lists_every_name_literally(hostile: Hostile) -> None:
    result = esper(hostile, "runs")
    assert result.exit_code == 0, result.output
    for name, run_id in hostile.names.items():
        assert f"{run_id}  {name}  " in result.output
    assert ESCAPED_LEGACY_NAME in result.output
    assert len(result.output.splitlines()) == 1 + len(hostile.names) + 1  # one line per run


@pytest.mark.parametrize("name", ["[/]", "test [wip]", "[bold red]x", ":thumbs_up:"])
def test_show_prints_names_tags_and_tracebacks_literally(hostile: Hostile, name: str) -> None:
    result = esper(hostile, "show", name)
    assert result.exit_code == 0, result.output
    assert f"{hostile.names[name]}  {name}" in result.output
    assert "colour=\\x1b[31mred\\x1b[0m" in result.output
    assert "link=[link=http://x]y[/link]" in result.output and "note=[/]" in result.output
    if name != "[/]":  # the failed ones
        assert f"Traceback (most recent call last):\n{visible(FAILURE)}" in result.output


def test_show_of_a_name_with_control_characters(hostile: Hostile) -> None:
    result = esper(hostile, "show", hostile.legacy)
    assert result.exit_code == 0, result.output
    assert f"{hostile.legacy}  {ESCAPED_LEGACY_NAME}" in result.output


def test_events_show_messages_literally(hostile: Hostile) -> None:
    result = esper(hostile, "events", "test [wip]")
    assert result.exit_code == 0, result.output
    assert "[/] \\x1b[31mmessage" in result.output


@pytest.mark.parametrize("fmt", ["table", "md"])
def test_compare_shows_the_names_literally(hostile: Hostile, fmt: str) -> None:
    result = esper(hostile, "compare", "[/]", "test [wip]", "[bold red]x", hostile.legacy,
                   "--format", fmt)
    assert result.exit_code == 0, result.output
    for name in ("[/]", "test [wip]", "[bold red]x"):
        assert name in result.output
    legacy = ESCAPED_LEGACY_NAME.replace("\\n", "<br>" if fmt == "md" else "\\n")
    assert legacy in result.output


def test_wiring_names_the_run_literally(hostile: Hostile) -> None:
    result = esper(hostile, "wiring", "[/]")
    assert result.exit_code == 0, result.output
    assert f"run {hostile.names['[/]']} ([/]): " in result.output


def test_an_error_quoting_what_was_typed_shows_it_literally(hostile: Hostile) -> None:
    result = esper(hostile, "show", "\x1b[31mnope")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: no run matches '\\x1b[31mnope'; ")
    usage = esper(hostile, "runs", "--status", "\x1b[2J")
    assert usage.exit_code == 2 and "'\\x1b[2J' is not one of" in usage.stderr


def test_visible_escapes_what_is_not_printable() -> None:
    assert visible("plain [/] café 中文 :smile:") == "plain [/] café 中文 :smile:"
    assert visible("a\nb\tc\rd\x1b\x7f\x9b\u2028\u202e\xa0") == \
        "a\\nb\\tc\\rd\\x1b\\x7f\\x9b\\u2028\\u202e\\xa0"
    assert visible("a\nb\x1b", newlines=True) == "a\nb\\x1b"
