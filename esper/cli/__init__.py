"""cli: the `esper` command line, thin click commands over the library.

Each command parses its arguments, calls one library function and renders the result.
`EsperError` becomes a message on stderr and its exit code; anything else is a bug.

Modules: ``options`` (the options several commands share, defined once), ``run`` (validate,
run, rerun), ``runs`` (runs, show, events, wiring, delete, gc, tag, note), ``compare``,
``sweep``, ``regress``, ``tracking`` (ui, sync). Commands import the libraries that load
torch or MLflow inside their bodies, so `esper --help` starts quickly.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from typing import Any

import click

import esper
from esper.cli.compare import compare_command
from esper.cli.regress import regress_command
from esper.cli.run import rerun_command, run_command, validate
from esper.cli.runs import (delete_command, events_command, gc_command, note_command,
                            runs_command, show_command, tag_command, wiring_command)
from esper.cli.sweep import sweep_command
from esper.cli.tracking import sync_command, ui_command
from esper.leyline.errors import EsperError, SpecError
from esper.nissa.recording import killed_run
from esper.registry import render
from esper.registry.storage import unusable


class _UserError(click.ClickException):
    """An `EsperError` on its way out: `Error: message` on stderr, the error's exit code. The
    user text a message quotes is shown literally (``render.visible``)."""

    def __init__(self, error: EsperError) -> None:
        message = error.message
        if isinstance(error, SpecError):
            count = len(error.problems)
            message = f"invalid experiment ({count} problem{'s' if count != 1 else ''}):\n{message}"
        super().__init__(render.visible(message, newlines=True))
        self.exit_code = error.exit_code


class _EsperGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except EsperError as error:
            raise _UserError(error) from None
        except click.ClickException as error:  # a usage error may quote what was typed
            error.message = render.visible(error.message, newlines=True)
            raise
        except sqlite3.DatabaseError as error:  # a registry damaged inside, found by a read
            raise _UserError(unusable("the registry", error)) from None
        except KeyboardInterrupt as interrupt:
            run = killed_run(interrupt)  # None: before a run was recorded, or between runs
            click.echo("Interrupted." if run is None else
                       f"Interrupted: run {run.run_id} ({run.name}) recorded as KILLED.", err=True)
            ctx.exit(130)
        except BrokenPipeError:  # `esper events RUN | head`: the reader has what it wanted
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no flush error
            ctx.exit(0)


@click.group(cls=_EsperGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(esper.__version__, prog_name="esper")
def cli() -> None:
    """esper: declarative experiments for morphogenetic neural-network training.

    An experiment is a YAML file validated against schemas/experiment.schema.json.

    Example:

        \b
        esper validate experiments/quickstart.yaml
    """


for _command in (validate, runs_command, show_command, events_command, run_command,
                 rerun_command, sync_command, delete_command, gc_command, tag_command,
                 note_command, ui_command, wiring_command, regress_command, compare_command,
                 sweep_command):
    cli.add_command(_command)


def main() -> None:
    """Run the command line (the `esper` command starts it through `esper.__main__`)."""
    cli()
