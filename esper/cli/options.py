"""The options several commands share, each defined once.

Each is a function returning the click decorator; a command whose option means something
narrower (``--json`` of `esper compare` is ``--format json``) passes its own help text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]

_SET_HELP = "Override a key of the experiment; the value is read as YAML (repeatable)."
_NO_MLFLOW_HELP = "Do not record to MLflow (as tracking.mlflow: false)."
_URI_HELP = ("MLflow tracking store [default: each run's tracking.uri, else "
             "$MLFLOW_TRACKING_URI, else sqlite:///mlflow.db].")
STORE_URI_HELP = "MLflow tracking store [default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db]."


def registry_option() -> Decorator:
    """``--registry`` (``registry_path``): the run registry file, else $ESPER_REGISTRY."""
    return click.option(
        "--registry", "registry_path", envvar="ESPER_REGISTRY", default=None,
        type=click.Path(dir_okay=False),
        help="Run registry file [default: $ESPER_REGISTRY, else ./runs.db].")


def overrides_option(help_text: str = _SET_HELP) -> Decorator:
    """``--set KEY.PATH=VALUE`` (``overrides``, repeatable): overrides of the experiment."""
    return click.option("--set", "overrides", multiple=True, metavar="KEY.PATH=VALUE",
                        help=help_text)


def json_option(help_text: str = "Print JSON to stdout.") -> Decorator:
    """``--json`` (``as_json``): JSON on stdout instead of tables or text."""
    return click.option("--json", "as_json", is_flag=True, help=help_text)


def no_mlflow_option(help_text: str = _NO_MLFLOW_HELP) -> Decorator:
    """``--no-mlflow`` (``no_mlflow``): record to the registry only."""
    return click.option("--no-mlflow", is_flag=True, help=help_text)


def name_option(help_text: str = "Name of the run (default: <experiment>-<n>).") -> Decorator:
    """``--name``: the name of the run the command records."""
    return click.option("--name", help=help_text)


def mlflow_uri_option(help_text: str = _URI_HELP) -> Decorator:
    """``--uri``: the MLflow tracking store the command talks to."""
    return click.option("--uri", help=help_text)


def run_argument() -> Decorator:
    """The ``RUN`` argument (``run_ref``): a run id, a unique prefix of one, or a run name."""
    return click.argument("run_ref", metavar="RUN")
