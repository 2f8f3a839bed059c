"""MLflow: `esper sync` (a run pushed from the registry) and `esper ui` (its web UI)."""

from __future__ import annotations

import json
from dataclasses import asdict

import click

from esper.cli.options import (STORE_URI_HELP, json_option, mlflow_uri_option, registry_option,
                               run_argument)
from esper.registry import Registry, render


@click.command("sync")
@run_argument()
@registry_option()
@mlflow_uri_option("MLflow tracking store [default: the run's tracking.uri, else "
                   "$MLFLOW_TRACKING_URI, else sqlite:///mlflow.db].")
@click.option("--force", is_flag=True, help="Replace the MLflow run even if it is complete.")
@json_option()
def sync_command(run_ref: str, registry_path: str | None, uri: str | None, force: bool,
                 as_json: bool) -> None:
    """Push RUN from the registry to MLflow (after MLflow was unreachable, or --no-mlflow).

    Replays the recorded events through the MLflow sink of a live run; a complete MLflow run is
    left alone, a partial one is replaced.

    Example:

        \b
        esper sync quickstart-3
    """
    from esper.nissa.mlflow_sync import sync_run  # imports mlflow: ~3 s

    with Registry.open(registry_path, create=False) as registry:
        result = sync_run(registry, run_ref, uri=uri, force=force)
    if as_json:
        click.echo(json.dumps(asdict(result), indent=2))
    else:
        done = "pushed to" if result.pushed else "already complete in"
        click.echo(f"run {result.run_id} ({render.visible(result.name)}) {done} MLflow run "
                   f"{result.mlflow_run_id} (experiment {result.mlflow_experiment_id}) "
                   f"in {result.uri}")


@click.command("ui")
@click.option("--port", type=click.IntRange(1, 65535), default=5000, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@mlflow_uri_option(STORE_URI_HELP)
def ui_command(port: int, host: str, uri: str | None) -> None:
    """Start the MLflow UI on the tracking store esper records to; print its URL. Ctrl-C stops.

    Example:

        \b
        esper ui --port 5001
    """
    from esper.nissa.mlflow_ui import serve_until_stopped, start_ui  # imports mlflow: ~3 s

    server = start_ui(uri, host=host, port=port)
    click.echo(f"starting the MLflow UI on {server.location.uri} ...", err=True)

    def announce() -> None:  # once it answers: the URL leads somewhere
        click.echo(server.url)
        click.echo(f"MLflow UI on {server.location.uri}; Ctrl-C stops it", err=True)

    code = serve_until_stopped(server, announce)
    if code:
        raise click.exceptions.Exit(code)
