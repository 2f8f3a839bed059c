"""Every command explains itself: help text with an example (sqlite-utils tests/test_docs.py)."""

import pytest
from click.testing import CliRunner

import esper
from esper.cli import cli


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_every_command_has_help_with_an_example(name):
    command = cli.commands[name]
    assert command.help and len(command.help.strip()) > 20, f"esper {name} lacks help text"
    assert "Example" in command.help, f"esper {name} --help shows no example"
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0
    assert f"esper {name}" in result.output
    # the examples are shown as written, one command a line (click rewraps other paragraphs)
    examples = result.output.split("Example:")[1].split("Options:")[0].split("\n")
    written = [line.strip() for line in command.help.split("Example:")[1].split("\n")]
    shown = [line.strip() for line in examples if line.strip()]
    assert shown == [line for line in written if line and line != "\b"], shown


def test_version_and_top_level_help():
    runner = CliRunner()
    assert runner.invoke(cli, ["--version"]).output.strip() == f"esper, version {esper.__version__}"
    top = runner.invoke(cli, ["--help"])
    assert top.exit_code == 0 and "validate" in top.output
