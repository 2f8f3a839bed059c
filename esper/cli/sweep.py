"""`esper sweep`: run (or resume) a sweep and print its trials ranked by the sweep metric."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from esper.cli.options import (json_option, name_option, no_mlflow_option, overrides_option,
                               registry_option)
from esper.experiment import load
from esper.registry import Registry, render
from esper.sweep.errors import SweepError, TrialsFailed
from esper.sweep.plan import with_grid
from esper.sweep.ranking import rank_sweep
from esper.sweep.render import ranking_table, ranking_to_dict

if TYPE_CHECKING:  # the driver imports torch: only when a sweep runs, not for `esper --help`
    from esper.sweep.driver import SweepResult


@click.command("sweep")
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@click.option("--grid", multiple=True, metavar="KEY.PATH=V1,V2,...",
              help="Values to try for a dotted key; adds to or replaces the file's sweep "
                   "parameters (repeatable).")
@overrides_option("Override a key of the experiment (every trial); read as YAML (repeatable).")
@click.option("--resume", "resume_ref", metavar="SWEEP_RUN",
              help="Rerun the trials of this sweep that did not finish (no FILE).")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local",
              show_default=True, help="local: worker processes here; ray: Ray tasks.")
@click.option("--address", help="Ray cluster address (auto, HOST:6379 or ray://HOST:10001) "
              "[default: start a local Ray].")
@click.option("--max-parallel", type=click.IntRange(min=1), default=2, show_default=True,
              help="Trials running at once.")
@name_option("Name of the sweep's run (default: <experiment>-<n>).")
@registry_option()
@no_mlflow_option("Do not record to MLflow.")
@json_option("Print the ranking as JSON to stdout.")
def sweep_command(file: str | None, grid: tuple[str, ...], overrides: tuple[str, ...],
                  resume_ref: str | None, executor: str, address: str | None, max_parallel: int,
                  name: str | None, registry_path: str | None, no_mlflow: bool,
                  as_json: bool) -> None:
    """Run the sweep of FILE: every trial a child run of the sweep's run, ranked at the end.

    The search space is the file's sweep: block (method grid or random, parameters by
    dotted key) plus --grid. Every trial is validated before anything runs. A failed trial
    does not stop the sweep; the exit code is 1 when a trial did not finish, and
    --resume SWEEP_RUN reruns those. Ctrl-C ends the trials in flight and the sweep KILLED.

    Example:

        \b
        esper sweep experiments/sweep_quickstart.yaml --grid host.lr=0.01,0.1 --max-parallel 2
    """
    if (file is None) == (resume_ref is None):
        raise SweepError("give FILE to run a sweep, or --resume SWEEP_RUN to resume one "
                         "(not both)")
    if resume_ref is not None and (grid or overrides or name):
        raise SweepError("--resume reruns the sweep as it was planned: --grid, --set and "
                         "--name apply to a new sweep only")
    from esper.sweep.driver import resume_sweep, run_sweep
    from esper.sweep.executor import executor_for

    pool = executor_for(executor, address, max_parallel)

    def progress(line: str) -> None:  # stderr: --json keeps stdout for the ranking
        click.echo(render.visible(line), err=True)

    if resume_ref is not None:
        result = resume_sweep(resume_ref, pool, registry=registry_path,
                              mlflow=False if no_mlflow else None, progress=progress)
    else:
        spec = with_grid(load(file, overrides), grid)
        if no_mlflow:
            spec = spec.without_mlflow()
        result = run_sweep(spec, pool, registry=registry_path, spec_path=file, name=name,
                           progress=progress)
    if as_json:
        click.echo(json.dumps(ranking_to_dict(result.ranking), indent=2))
    else:
        _print(result)
    if result.failed:
        raise TrialsFailed(f"{len(result.failed)} of {len(result.trials)} trials did not finish; "
                           f"rerun them with: esper sweep --resume {result.sweep.run_id}")


def print_ranking(ref: str, registry_path: str | None, *, as_json: bool) -> None:
    """Print the ranking of sweep `ref` (``esper compare sweep:<id>``), as a table or JSON."""
    with Registry.open(registry_path, create=False) as registry:
        ranking = rank_sweep(registry, ref)
    if as_json:
        click.echo(json.dumps(ranking_to_dict(ranking), indent=2))
    else:
        render.console().print(ranking_table(ranking))


def _print(result: SweepResult) -> None:
    sweep = result.sweep
    click.echo(f"sweep {sweep.name} ({sweep.run_id}): {sweep.status.value}, "
               f"{len(result.trials)} trial runs" + (f"; {sweep.exit_reason}"
                                                     if sweep.exit_reason else ""))
    render.console().print(ranking_table(result.ranking))
