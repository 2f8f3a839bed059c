"""The `esper` command line: thin click commands over the library.

Each command parses its arguments, calls one library function and renders the result.
`EsperError` becomes a message on stderr and its exit code; anything else is a bug.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import click
import yaml

import esper
from esper.compare.command import compare_command
from esper.compare.outcomes import OUTCOME_METRICS, outcome_metrics
from esper.experiment import load, spec_from_dict, spec_to_dict
from esper.experiment.config_diff import changed_from_defaults
from esper.leyline.config import ExperimentSpec
from esper.leyline.errors import EsperError, SpecError
from esper.leyline.codec import encode_event
from esper.leyline.events import TelemetryEventType
from esper.nissa.console_sink import ConsoleProgressSink
from esper.nissa.recording import killed_run
from esper.registry import Registry, RunRecord, RunStatus, render
from esper.registry.records import RERUN_TAG, RunKind
from esper.registry.connection import unusable
from esper.registry.refs import check_name
from esper.registry.run_table import Condition, NamedMetrics, SortKey, run_rows
from esper.regress.cli import regress_command
from esper.sweep.cli import sweep_command
from esper.registry.wiring_report import (no_opportunity, wiring_counts, wiring_markdown,
                                          wiring_runs, wiring_table)

if TYPE_CHECKING:  # imported by the commands that use them: they import mlflow
    from esper.nissa.mlflow_manage import MlflowChange
    from esper.registry.deletion import FileEntry


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


registry_option = click.option(
    "--registry", "registry_path", envvar="ESPER_REGISTRY", default=None,
    type=click.Path(dir_okay=False), help="Run registry file [default: $ESPER_REGISTRY, else ./runs.db].")
_EVENTS_TABLE_ROWS = 1_000  # rows `esper events` shows as a table without --limit


@cli.command("runs")
@registry_option
@click.option("--status", type=click.Choice([s.value for s in RunStatus], case_sensitive=False),
              help="Only runs with this status.")
@click.option("--experiment", help="Only runs of this experiment.")
@click.option("--name", help="Only runs with this name.")
@click.option("--tag", metavar="KEY[=VALUE]", help="Only runs with this tag (and value).")
@click.option("--kind", type=click.Choice([k.value for k in RunKind]),
              help="Only runs of this kind: esper run, a sweep's run, a sweep's trials, "
                   "esper regress.")
@click.option("--since", type=click.DateTime(), help="Only runs started at or after (local time).")
@click.option("--until", type=click.DateTime(), help="Only runs started before (local time).")
@click.option("--column", "-c", "columns", multiple=True, metavar="KEY",
              help="Add a column: a config key (training.envs), an outcome metric "
                   "(final_val_accuracy), a metric series (episode/val_accuracy, its last "
                   "value), tag:KEY or a run field (seed, duration_s, ...) (repeatable).")
@click.option("--where", "conditions", multiple=True, metavar="CONDITION",
              help="Only runs whose KEY meets the condition; OP is one of = != < <= > >= "
                   "(repeatable, all must hold), e.g. 'final_val_accuracy>=90'.")
@click.option("--sort", "sort_keys", multiple=True, metavar="KEY[:desc]",
              help="Order by KEY (repeatable; the first decides first) [default: newest first].")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@json_option
def runs_command(registry_path: str | None, status: str | None, experiment: str | None,
                 name: str | None, tag: str | None, kind: str | None, since: Any, until: Any,
                 columns: tuple[str, ...], conditions: tuple[str, ...],
                 sort_keys: tuple[str, ...], limit: int, as_json: bool) -> None:
    """List runs, newest first: id, name, experiment, kind, status, started, duration, events,
    and the chosen columns.

    The kind is run, sweep, trial (of its parent run) or regression, with the replicate group
    of a run. A RUNNING run whose process is gone (or whose heartbeat is stale) is shown as
    CRASHED. A run without a value for a --where key is left out; --sort puts it last.

    Example:

        \b
        esper runs --experiment quickstart --status FINISHED --limit 10
        esper runs -c training.envs -c final_val_accuracy --where 'final_val_accuracy>=90' --sort final_val_accuracy:desc
    """
    where = [Condition.parse(text) for text in conditions]
    sort = [SortKey.parse(text) for text in sort_keys]
    with Registry.open(registry_path, create=False) as registry:
        found = registry.runs(status=RunStatus(status) if status else None, experiment=experiment,
                              name=name, tag=tag, since=since, until=until,
                              kind=RunKind(kind) if kind else None,
                              limit=None if where or sort else limit)
        rows = run_rows(registry, found, columns, where, sort, NamedMetrics(
            frozenset(OUTCOME_METRICS), lambda run_id: outcome_metrics(registry, run_id)))[:limit]
    if as_json:
        click.echo(render.to_json([render.run_row_to_dict(row) for row in rows]))
    else:
        render.console().print(render.runs_table(rows))


@cli.command("show")
@click.argument("run_ref", metavar="RUN")
@registry_option
@json_option
def show_command(run_ref: str, registry_path: str | None, as_json: bool) -> None:
    """Show RUN: status, timings, provenance, sink drops, event counts by type, metrics, config.

    RUN is a run id, a unique prefix of one, or a run name (the latest run of that name).

    Example:

        \b
        esper show quickstart-3
    """
    with Registry.open(registry_path, create=False) as registry:
        summary = registry.summary(run_ref)
    if as_json:
        click.echo(render.to_json(render.summary_to_dict(summary)))
    else:
        render.console().print(render.summary_view(summary))


@cli.command("events")
@click.argument("run_ref", metavar="RUN")
@registry_option
@click.option("--type", "types", multiple=True, help="Only this event type (repeatable).",
              type=click.Choice([t.value for t in TelemetryEventType], case_sensitive=False))
@click.option("--env", "env_id", type=int, help="Only events of this environment.")
@click.option("--batch", type=int, help="Only events of this PPO batch.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many events "
              f"[default: all for jsonl, {_EVENTS_TABLE_ROWS} for table].")
@click.option("--format", "fmt", type=click.Choice(["table", "jsonl"]), default="table",
              show_default=True)
def events_command(run_ref: str, registry_path: str | None, types: tuple[str, ...],
                   env_id: int | None, batch: int | None, limit: int | None, fmt: str) -> None:
    """Print the events of RUN in seq order, as a table or as JSON Lines.

    Example:

        \b
        esper events quickstart-3 --type EPOCH_COMPLETED --env 0 --format jsonl
    """
    shown = limit or (None if fmt == "jsonl" else _EVENTS_TABLE_ROWS)
    with Registry.open(registry_path, create=False) as registry:
        run = registry.resolve(run_ref)
        events = registry.events(run.run_id, types=[TelemetryEventType(t) for t in types] or None,
                                 env_id=env_id, batch=batch, limit=shown)
        if fmt == "jsonl":
            for event in events:
                click.echo(encode_event(event))
        else:
            render.console().print(render.events_table(events))
    if limit is None and shown is not None and run.event_count > shown:
        click.echo(f"showing the first {shown} events; use --limit or --format jsonl", err=True)


def _training_options(command: Callable[..., None]) -> Callable[..., None]:
    """The options of a command that trains and records a run (`run`, `rerun`)."""
    for option in reversed((
        overrides_option,
        click.option("--name", help="Name of the run (default: <experiment>-<n>)."),
        registry_option,
        click.option("--no-mlflow", is_flag=True,
                     help="Do not record to MLflow (as tracking.mlflow: false)."),
        click.option("--wiring-failures", type=click.Choice(["fail", "warn"]), default="fail",
                     show_default=True, help="A wiring FAIL or XPASS ends with exit code 1 "
                     "(fail) or only a warning (warn)."),
        click.option("--quiet", "-q", is_flag=True, help="No progress display and no summary."),
        json_option,
    )):
        command = option(command)
    return command


@cli.command("run")
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
    check_name(name)  # before anything is compiled or recorded
    _train(load(file, overrides), file, name=name, registry_path=registry_path,
           no_mlflow=no_mlflow, wiring_failures=wiring_failures, quiet=quiet, as_json=as_json)


@cli.command("rerun")
@click.argument("run_ref", metavar="RUN")
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
    check_name(name)
    with Registry.open(registry_path, create=False) as registry:
        record = registry.resolve(run_ref)
    _train(_rerun_spec(record, overrides), None, name=name, registry_path=registry_path,
           no_mlflow=no_mlflow, wiring_failures=wiring_failures, quiet=quiet, as_json=as_json)


def _rerun_spec(record: RunRecord, overrides: tuple[str, ...]) -> ExperimentSpec:
    """The experiment of ``record``'s resolved config and ``overrides``, tagged as its rerun.

    Raises:
        click.UsageError: ``record`` is a sweep's run (its config is the sweep, not a run).
        SpecError: the config with the overrides is invalid (located at ``--set`` or the run).
    """
    if record.kind is RunKind.SWEEP:
        raise click.UsageError(f"run {record.run_id} ({record.name}) is a sweep's run: rerun "
                               "one of its trials, or the sweep with esper sweep")
    spec = spec_from_dict(dict(record.config), ("training.replicates=1", *overrides),
                          source=f"run {record.run_id}")
    tags = {k: v for k, v in spec.tracking.tags.items() if not k.startswith("esper.")}
    return dataclasses.replace(spec, tracking=dataclasses.replace(
        spec.tracking, tags={**tags, RERUN_TAG: record.run_id}))


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


@cli.command("sync")
@click.argument("run_ref", metavar="RUN")
@registry_option
@click.option("--uri", help="MLflow tracking store [default: the run's tracking.uri, else "
              "$MLFLOW_TRACKING_URI, else sqlite:///mlflow.db].")
@click.option("--force", is_flag=True, help="Replace the MLflow run even if it is complete.")
@json_option
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


mlflow_uri_option = click.option(
    "--uri", help="MLflow tracking store [default: each run's tracking.uri, else "
    "$MLFLOW_TRACKING_URI, else sqlite:///mlflow.db].")


@cli.command("delete")
@click.argument("run_refs", nargs=-1, required=True, metavar="RUN...")
@registry_option
@click.option("--with-children", is_flag=True,
              help="Also delete the child runs of a run deleted (a sweep's trials).")
@click.option("--dry-run", is_flag=True, help="List what would be removed; change nothing.")
@mlflow_uri_option
@json_option
def delete_command(run_refs: tuple[str, ...], registry_path: str | None, with_children: bool,
                   dry_run: bool, uri: str | None, as_json: bool) -> None:
    """Delete RUNs: their rows in the registry (one transaction), their files (artifacts/<run
    id>/ and the files they recorded) and their MLflow runs.

    A RUNNING run is refused (exit code 2), so is a sweep's run unless its trials are named too
    or --with-children is given. An MLflow store that cannot be reached is reported; `esper gc
    --mlflow` deletes those MLflow runs later. MLflow keeps deleted runs until `mlflow gc`.

    Example:

        \b
        esper delete quickstart-3 quickstart-4 --dry-run
    """
    from esper.nissa.mlflow_manage import delete_runs  # imports mlflow: ~3 s

    with Registry.open(registry_path, create=False) as registry:
        report = delete_runs(registry, run_refs, with_children=with_children, dry_run=dry_run,
                             uri=uri)
    _warn_unreached(report.mlflow, "esper gc --mlflow --uri {uri}")
    if as_json:
        click.echo(render.to_json(report.to_dict()))
        return
    done = "would delete" if dry_run else "deleted"
    click.echo(f"{done} {len(report.plan.runs)} run(s): " + ", ".join(
        f"{r.run_id} ({render.visible(r.name)})" for r in report.plan.runs))
    click.echo("  rows: " + ", ".join(f"{table} {n:,}" for table, n in report.plan.rows.items()))
    _echo_removed(report.plan.files, report.mlflow, dry_run=dry_run)


@cli.command("gc")
@registry_option
@click.option("--dry-run", is_flag=True, help="List what would be removed; change nothing.")
@click.option("--mlflow", "with_mlflow", is_flag=True,
              help="Also delete the MLflow runs recorded from this registry whose run is gone.")
@click.option("--uri", help="MLflow tracking store [default: $MLFLOW_TRACKING_URI, else "
              "sqlite:///mlflow.db].")
@json_option
def gc_command(registry_path: str | None, dry_run: bool, with_mlflow: bool, uri: str | None,
               as_json: bool) -> None:
    """Remove the files under artifacts/ (beside the registry) of runs no longer in it, and
    with --mlflow their MLflow runs; print what was removed and the bytes freed.

    Only entries named like a run id (12 hex digits) are considered: other files are left.

    Example:

        \b
        esper gc --dry-run --mlflow
    """
    from esper.nissa.mlflow_manage import collect_garbage  # imports mlflow: ~3 s

    with Registry.open(registry_path, create=False) as registry:
        report = collect_garbage(registry, dry_run=dry_run, mlflow=with_mlflow, uri=uri)
    _warn_unreached(report.mlflow, "esper gc --mlflow --uri {uri}")
    if as_json:
        click.echo(render.to_json(report.to_dict()))
    else:
        click.echo("would remove" if dry_run else "removed")
        _echo_removed(report.files, report.mlflow, dry_run=dry_run)


@cli.command("tag")
@click.argument("run_ref", metavar="RUN")
@click.argument("tags", nargs=-1, metavar="KEY=VALUE...")
@click.option("--remove", "removed", multiple=True, metavar="KEY", help="Remove the tag KEY "
              "(repeatable).")
@registry_option
@mlflow_uri_option
@json_option
def tag_command(run_ref: str, tags: tuple[str, ...], removed: tuple[str, ...],
                registry_path: str | None, uri: str | None, as_json: bool) -> None:
    """Set tags KEY=VALUE on RUN, and remove the keys --remove names, in the registry and on its
    MLflow run. esper.* and mlflow.* tags are esper's and MLflow's own (exit code 2).

    Example:

        \b
        esper tag quickstart-3 baseline=yes reviewer=ana --remove draft
    """
    from esper.nissa.mlflow_manage import tag_run  # imports mlflow: ~3 s

    pairs = [text.partition("=") for text in tags]
    if any(not key or not equals for key, equals, _ in pairs) or not (tags or removed):
        raise click.UsageError("expected KEY=VALUE tags (or --remove KEY), e.g. baseline=yes")
    with Registry.open(registry_path, create=False) as registry:
        record, changes = tag_run(registry, run_ref, {k: v for k, _, v in pairs}, removed,
                                  uri=uri)
    _echo_updated(record, changes, {"tags": dict(record.tags)}, as_json)


@cli.command("note")
@click.argument("run_ref", metavar="RUN")
@click.argument("text")
@registry_option
@mlflow_uri_option
@json_option
def note_command(run_ref: str, text: str, registry_path: str | None, uri: str | None,
                 as_json: bool) -> None:
    """Replace the notes of RUN (its description; MLflow's run description) with TEXT;
    "" clears them.

    Example:

        \b
        esper note quickstart-3 "baseline for the LSTM comparison"
    """
    from esper.nissa.mlflow_manage import note_run  # imports mlflow: ~3 s

    with Registry.open(registry_path, create=False) as registry:
        record, changes = note_run(registry, run_ref, text, uri=uri)
    _echo_updated(record, changes, {"notes": record.notes}, as_json)


def _warn_unreached(changes: Sequence[MlflowChange], later: str) -> None:
    """One warning on stderr per MLflow store that could not be reached, and how to finish."""
    for change in changes:
        if change.error is not None:
            click.echo(f"Warning: {render.visible(change.error)}; once it can be reached: "
                       + later.format(uri=change.uri), err=True)


def _echo_removed(files: Sequence[FileEntry], changes: Sequence[MlflowChange], *,
                  dry_run: bool = False) -> None:
    total = sum(entry.bytes for entry in files)
    click.echo(f"  files: {len(files)} ({total:,} bytes" + (" to free)" if dry_run else " freed)"))
    for entry in files:
        click.echo(f"    {render.visible(entry.path)} ({entry.bytes:,} bytes)")
    for change in changes:
        if change.error is None:
            click.echo(f"  MLflow runs in {change.uri}: {', '.join(change.run_ids) or 'none'}")


def _echo_updated(record: RunRecord, changes: Sequence[MlflowChange], fields: dict[str, Any],
                  as_json: bool) -> None:
    """The run's changed fields and the MLflow runs updated with them."""
    _warn_unreached(changes, f"esper sync {record.run_id} --force")
    if as_json:
        click.echo(render.to_json({"run_id": record.run_id, "name": record.name, **fields,
                                   "mlflow": [asdict(change) for change in changes]}))
        return
    click.echo(f"run {record.run_id} ({render.visible(record.name)}): " + "; ".join(
        f"{key} {render.visible(json.dumps(value, ensure_ascii=False))}"
        for key, value in fields.items()))
    for change in changes:
        if change.error is None:
            click.echo(f"  MLflow runs updated in {change.uri}: {', '.join(change.run_ids)}")


@cli.command("ui")
@click.option("--port", type=click.IntRange(1, 65535), default=5000, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--uri", help="MLflow tracking store [default: $MLFLOW_TRACKING_URI, else "
              "sqlite:///mlflow.db].")
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


@cli.command("wiring")
@click.argument("run_refs", nargs=-1, metavar="[RUN]...")
@registry_option
@click.option("--markdown", is_flag=True,
              help="Print the wiring-gaps document of RUNs (default: the latest run of each "
                   "experiment), per TELE group.")
@json_option
def wiring_command(run_refs: tuple[str, ...], registry_path: str | None, markdown: bool,
                   as_json: bool) -> None:
    """Show the telemetry wiring outcome of every catalogue field of RUN (default: the latest run).

    PASS expected and observed; FAIL expected, never observed although it had its opportunity;
    NO_OPPORTUNITY expected, but the event that gives it its chance never happened (no seed
    germinated, say: not a failure); XFAIL a declared gap; XPASS a declared gap that was observed
    (remove its xfail); SKIP probe off or not expected.

    Example:

        \b
        esper wiring lstm_tele340-2
        esper wiring --markdown > WIRING_GAPS.md
    """
    with Registry.open(registry_path, create=False) as registry:
        runs = wiring_runs(registry, run_refs, latest_per_experiment=markdown)
        reports = [(record, registry.wiring(record.run_id)) for record in runs]
    if markdown:
        click.echo(wiring_markdown(reports), nl=False)
    elif as_json:
        click.echo(render.to_json([{"run_id": r.run_id, "name": r.name, "counts": wiring_counts(rows),
                                    "fields": rows} for r, rows in reports]))
    else:
        for record, rows in reports:
            click.echo(f"run {record.run_id} ({render.visible(record.name)}): " + ", ".join(
                f"{n} {k}" for k, n in wiring_counts(rows).items() if n))
            for line in no_opportunity(rows):
                click.echo(f"  not exercised: {line}")
            render.console().print(wiring_table(rows))


cli.add_command(regress_command)
cli.add_command(compare_command)
cli.add_command(sweep_command)


def main() -> None:
    """Run the command line (the `esper` command starts it through `esper.__main__`)."""
    cli()
