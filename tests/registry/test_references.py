"""A run reference is never ambiguous: names that could be read as id prefixes are refused
when a run is created, and a reference that is both a name and an id prefix is refused."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from esper.cli import cli
from esper.registry import AmbiguousRun, Registry
from esper.registry.errors import BadRunName, BadRegistryPath

from .builders import new_run

QUICKSTART = str(Path(__file__).parents[2] / "experiments" / "quickstart.yaml")


@pytest.mark.parametrize("name", ["81862a60", "0", "cafe", "deadbeef0123", "", "  ",
                                  "tab\there", "new\nline", "\x1b[31mred", "bidi\u202e"])
def test_a_name_that_is_hex_or_not_printable_is_refused(registry: Registry, name: str) -> None:
    with pytest.raises(BadRunName) as error:
        registry.create_run(new_run(name=name))
    assert error.value.exit_code == 2
    assert registry.runs() == []


@pytest.mark.parametrize("name", ["run-cafe", "81862a60x", "CAFE", "test [wip]", "[/]", "été"])
def test_other_names_are_kept_as_given(registry: Registry, name: str) -> None:
    run = registry.create_run(new_run(name=name))
    assert run.name == name and registry.resolve(name).run_id == run.run_id


@pytest.mark.parametrize("command", ["run", "sweep"])
def test_the_cli_refuses_a_hex_name_before_anything_runs(tmp_path: Path, command: str) -> None:
    db = tmp_path / "runs.db"
    result = CliRunner().invoke(cli, [command, QUICKSTART, "--name", "81862a60", "--no-mlflow",
                                      "--registry", str(db)])
    assert result.exit_code == 2, result.output
    assert result.stderr == ("Error: run name '81862a60' could be read as a run id prefix: use "
                             "a character other than 0-9 and a-f, e.g. run-81862a60\n")
    assert not db.exists()


def _rename(db_path: Path, run_id: str, name: str) -> None:
    """Name a run as an older esper allowed (names were not checked)."""
    with sqlite3.connect(db_path) as conn:
        conn.execute("UPDATE runs SET name = ? WHERE run_id = ?", [name, run_id])


def test_a_name_that_is_also_an_id_prefix_is_refused(registry: Registry, db_path: Path) -> None:
    target, shadow = registry.create_run(new_run()), registry.create_run(new_run())
    prefix = target.run_id[:8]
    _rename(db_path, shadow.run_id, prefix)  # `esper show <prefix>` once returned `shadow`
    with pytest.raises(AmbiguousRun) as error:
        registry.resolve(prefix)
    assert error.value.exit_code == 2
    message = error.value.message
    assert message.startswith(f"'{prefix}' is the name of run {shadow.run_id} ({prefix}, ")
    assert f"and a prefix of the id of {target.run_id} (exp-1, " in message
    assert message.endswith("; give the full id of the run you mean")
    assert registry.resolve(target.run_id).run_id == target.run_id  # a full id always wins
    assert registry.resolve(shadow.run_id).run_id == shadow.run_id


def test_the_cli_lists_both_candidates_and_exits_2(registry: Registry, db_path: Path) -> None:
    target, shadow = registry.create_run(new_run()), registry.create_run(new_run())
    _rename(db_path, shadow.run_id, target.run_id[:6])
    result = CliRunner().invoke(cli, ["show", target.run_id[:6], "--registry", str(db_path)])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: '{target.run_id[:6]}' is the name of run ")
    assert shadow.run_id in result.stderr and target.run_id in result.stderr


def test_a_name_that_is_a_prefix_of_its_own_id_is_not_ambiguous(
        registry: Registry, db_path: Path) -> None:
    run = registry.create_run(new_run())
    _rename(db_path, run.run_id, run.run_id[:5])
    assert registry.resolve(run.run_id[:5]).run_id == run.run_id


@pytest.mark.parametrize("registry_arg", ["sqlite:///:memory:", ":memory:", "sqlite:///runs.db",
                                          "file:runs.db?mode=memory"])
def test_a_registry_that_is_not_a_file_path_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registry_arg: str) -> None:
    monkeypatch.chdir(tmp_path)
    runs = CliRunner().invoke(cli, ["runs", "--registry", registry_arg])
    assert runs.exit_code == 2
    assert runs.stderr == (f"Error: the registry is a file that keeps runs for later commands, "
                           f"not '{registry_arg}'; pass --registry PATH (or set ESPER_REGISTRY) "
                           "to use another file, e.g. --registry runs.db\n")
    run = CliRunner().invoke(cli, ["run", QUICKSTART, "--no-mlflow", "--quiet"],
                             env={"ESPER_REGISTRY": registry_arg})
    assert run.exit_code == 2 and run.stderr == runs.stderr
    assert list(tmp_path.iterdir()) == []  # no file named ':memory:', no sqlite: directory
    with pytest.raises(BadRegistryPath):
        Registry.open(registry_arg)
