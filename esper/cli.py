"""The `esper` command line: thin click commands over the library.

Each command parses its arguments, calls one library function and renders the result.
`EsperError` becomes a message on stderr and its exit code; anything else is a bug.
"""

from __future__ import annotations

import json
from typing import Any

import click
import yaml

import esper
from esper.experiment import load, spec_to_dict
from esper.experiment.config_diff import changed_from_defaults
from esper.leyline.errors import EsperError, SpecError


class _UserError(click.ClickException):
    """An `EsperError` on its way out: `Error: message` on stderr, the error's exit code."""

    def __init__(self, error: EsperError) -> None:
        message = error.message
        if isinstance(error, SpecError):
            count = len(error.problems)
            message = f"invalid experiment ({count} problem{'s' if count != 1 else ''}):\n{message}"
        super().__init__(message)
        self.exit_code = error.exit_code


class _EsperGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except EsperError as error:
            raise _UserError(error) from None


@click.group(cls=_EsperGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(esper.__version__, prog_name="esper")
def cli() -> None:
    """esper: declarative experiments for morphogenetic neural-network training.

    An experiment is a YAML file validated against schemas/experiment.schema.json.

    Example:

        esper validate experiments/quickstart.yaml
    """


overrides_option = click.option(
    "--set", "overrides", multiple=True, metavar="KEY.PATH=VALUE",
    help="Override a key of the experiment; the value is read as YAML (repeatable).")
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON to stdout.")


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@overrides_option
@json_option
def validate(files: tuple[str, ...], overrides: tuple[str, ...], as_json: bool) -> None:
    """Validate experiment FILES; print each resolved experiment and what differs from the defaults.

    Every problem of every file is reported at once, as FILE:LINE:COL: key.path: message.
    Exit code 2 when any file is invalid.

    Example:

        esper validate experiments/*.yaml --set training.envs=4
    """
    results, problems = [], []
    for path in files:
        try:
            spec = load(path, overrides)
        except SpecError as error:
            problems.extend(error.problems)
            continue
        changed = [{"key": c.key, "value": c.value, "default": c.default}
                   for c in changed_from_defaults(spec)]
        results.append({"file": path, "config": spec_to_dict(spec), "changed": changed})
    if as_json:
        click.echo(json.dumps(results, indent=2))
    else:
        for result in results:
            _print_validated(result)
    if problems:
        raise SpecError(list(dict.fromkeys(problems)))  # an override's problem once, not per file


def _print_validated(result: dict[str, Any]) -> None:
    click.secho(f"{result['file']}: valid", fg="green", bold=True)
    click.echo(yaml.safe_dump(result["config"], sort_keys=False).rstrip())
    click.echo("# differs from the defaults:" if result["changed"] else "# all defaults")
    for change in result["changed"]:
        click.echo(f"#   {change['key']}: {json.dumps(change['value'])} "
                   f"(default {json.dumps(change['default'])})")


def main() -> None:
    """Console entry point."""
    cli()
