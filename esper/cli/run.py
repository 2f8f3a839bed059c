"""`esper validate`, `esper run` and `esper rerun`: an experiment checked, trained, retrained."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click
import yaml

from esper.cli.options import (json_option, name_option, no_mlflow_option, overrides_option,
                               registry_option, run_argument)
from esper.experiment import load, spec_to_dict
from esper.experiment.config_diff import changed_from_defaults
from esper.experiment.rerun import NotRerunnable, rerun_spec
from esper.leyline.config import ExperimentSpec
from esper.leyline.errors import SpecError
from esper.nissa.console_sink import ConsoleProgressSink
from esper.registry import Registry


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@overrides_option()
@json_option()
def validate(files: tuple[str, ...], overrides: tuple[str, ...], as_json: bool) -> None:
    """Validate experiment FILES; print each resolved experiment and what differs from the defaults.

    Every problem of every file is reported at once, as FILE:LINE:COL: key.path: message.
    Exit code 2 when any file is invalid.

    Example:

        \b
        esper validate experiments/*.yaml --set training.envs=4
    """
    results, problems = [], []
    for path in files:
        try:
            spec = load(path, overrides)
        except SpecError as error:
            problems.extend(error.problems)
            results.append({"file": path, "valid": False,
                            "problems": [str(problem) for problem in error.problems]})
            continue
        changed = [{"key": c.key, "value": c.value, "default": c.default}
                   for c in changed_from_defaults(spec)]
        results.append({"file": path, "valid": True, "config": spec_to_dict(spec),
                        "changed": changed})
    if as_json:
        click.echo(json.dumps(results, indent=2))
    else:
        for result in results:
            if result["valid"]:
                _print_validated(result)
    if problems:
        raise SpecError(list(dict.fromkeys(problems)))  # an override's problem once, not per file


def _print_validated(result: dict[str, Any]) -> None:
    click.secho(f"{result['file']}: valid", fg="green", bold=True)
    click.echo(yaml.safe_dump(result["config"], sort_keys=False, allow_unicode=True).rstrip())
    click.echo("# differs from the defaults:" if result["changed"] else "# all defaults")
    for change in result["changed"]:
        click.echo(f"#   {change['key']}: {json.dumps(change['value'], ensure_ascii=False)} "
                   f"(default {json.dumps(change['default'], ensure_ascii=False)})")


def _training_options(command: Callable[..., None]) -> Callable[..., None]:
    """The options of a command that trains and records a run (`run`, `rerun`)."""
    for option in reversed((
        overrides_option(),
        name_option(),
        registry_option(),
        no_mlflow_option(),
        click.option("--wiring-failures", type=click.Choice(["fail", "warn"]), default="fail",
                     show_default=True, help="A wiring FAIL or XPASS ends with exit code 1 "
                     "(fail) or only a warning (warn)."),
        click.option("--quiet", "-q", is_flag=True, help="No progress display and no summary."),
        json_option(),
    )):
        command = option(command)
    return command


@click.command("run")
@click.argument("file", type=click.Path(dir_okay=False))
@_training_options
def run_command(file: str, overrides: tuple[str, ...], name: str | None,
                registry_path: str | None, no_mlflow: bool, wiring_failures: str, quiet: bool,
                as_json: bool) -> None:
    """Train the experiment FILE and record every event of the run in the registry and MLflow.

    MLflow: the store of tracking.uri, else $MLFLOW_TRACKING_URI, else ./mlflow.db; --no-mlflow
    (or tracking.mlflow: false) records to the registry only. Shows progress on stderr and a
    closing summary (run id, final accuracy per env, seeds germinated / fossilised / pruned,
    events recorded, wiring outcomes). Exit code 2 for an invalid experiment; 1 when a telemetry
    field is FAIL or XPASS (after everything is recorded), unless --wiring-failures=warn.

    Example:

        \b
        esper run experiments/quickstart.yaml --set training.batches=1
    """
    _train(load(file, overrides), file, name=name, registry_path=registry_path,
           no_mlflow=no_mlflow, wiring_failures=wiring_failures, quiet=quiet, as_json=as_json)


@click.command("rerun")
@run_argument()
@_training_options
def rerun_command(run_ref: str, overrides: tuple[str, ...], name: str | None,
                  registry_path: str | None, no_mlflow: bool, wiring_failures: str, quiet: bool,
                  as_json: bool) -> None:
    """Train RUN's resolved config again, with --set overrides, as `esper run` does.

    One run, whatever training.replicates was (--set training.replicates=N for a group), tagged
    esper.rerun_of=<RUN's id>; esper's own tags of RUN (esper.suite, ...) are not carried over.
    A sweep's run is refused: rerun one of its trials, or the sweep with `esper sweep`.

    Example:

        \b
        esper rerun quickstart-3 --set seed=7 --name quickstart-seed7
    """
    with Registry.open(registry_path, create=False) as registry:
        record = registry.resolve(run_ref)
    try:
        spec = rerun_spec(record, overrides)
    except NotRerunnable as error:  # a wrong invocation: the usage line, as for a bad option
        raise click.UsageError(error.message) from None
    _train(spec, None, name=name, registry_path=registry_path, no_mlflow=no_mlflow,
           wiring_failures=wiring_failures, quiet=quiet, as_json=as_json)


def _train(spec: ExperimentSpec, spec_path: str | None, *, name: str | None,
           registry_path: str | None, no_mlflow: bool, wiring_failures: str, quiet: bool,
           as_json: bool) -> None:
    """Run ``spec`` (its replicates), print the summary or its JSON; raise the wiring failure
    unless ``wiring_failures`` is "warn" (the body of `esper run` and `esper rerun`)."""
    from esper.experiment.replicates import group_summary, render_group_note, run_replicates
    from esper.experiment.run_summary import render_summary, run_summary, wiring_failure

    if no_mlflow:
        spec = spec.without_mlflow()
    training = spec.training
    group = run_replicates(spec, spec_path=spec_path, name=name, registry=registry_path,
                           sinks=lambda: (
        [] if quiet or as_json else
        [ConsoleProgressSink(training.batches, training.episode_length, training.envs)]))
    summaries = [run_summary(result) for result in group.results]
    if as_json:
        shown = summaries[0] if group.group_id is None else group_summary(group, summaries)
        click.echo(json.dumps(shown, indent=2))
    elif not quiet:
        click.echo("\n\n".join(render_summary(summary) for summary in summaries))
        if group.group_id is not None:
            click.echo(render_group_note(group))
    failed = [s for r, s in zip(group.results, summaries) if r.wiring_failed]
    if failed:
        failure = wiring_failure(failed[0])
        if wiring_failures == "fail":
            raise failure
        click.echo(f"Warning: {failure.message}", err=True)
