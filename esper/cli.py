"""The `esper` command line: thin click commands over the library.

Each command parses its arguments, calls one library function and renders the result.
`EsperError` becomes a message on stderr and its exit code; anything else is a bug.
"""

from __future__ import annotations

import click

import esper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(esper.__version__, prog_name="esper")
def cli() -> None:
    """esper: declarative experiments for morphogenetic neural-network training.

    An experiment is a YAML file validated against schemas/experiment.schema.json.

    Example:

        esper validate experiments/quickstart.yaml
    """


def main() -> None:
    """Console entry point."""
    cli()
