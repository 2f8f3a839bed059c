"""The registry's commands: `esper runs`, `show`, `events`, `wiring`, and `delete`, `gc`,
`tag`, `note` (which also change the runs' MLflow runs)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import click

from esper.cli.options import (STORE_URI_HELP, json_option, mlflow_uri_option, registry_option,
                               run_argument)
from esper.compare.outcomes import OUTCOME_METRICS, outcome_metrics
from esper.leyline.codec import encode_event
from esper.leyline.events import TelemetryEventType
from esper.registry import Registry, RunRecord, RunStatus, render
from esper.registry.records import RunKind
from esper.registry.run_table import Condition, NamedMetrics, SortKey, run_rows
from esper.registry.wiring_report import (no_opportunity, wiring_counts, wiring_markdown,
                                          wiring_runs, wiring_table)

if TYPE_CHECKING:  # imported by the commands that use them: they import mlflow
    from esper.nissa.mlflow_manage import MlflowChange
    from esper.registry.deletion import FileEntry

_EVENTS_TABLE_ROWS = 1_000  # rows `esper events` shows as a table without --limit


@click.command("runs")
@registry_option()
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
@json_option()
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
            frozenset(OUTCOME_METRICS),
            lambda run_id, names: outcome_metrics(registry, run_id, names=names)))[:limit]
    if as_json:
        click.echo(render.to_json([render.run_row_to_dict(row) for row in rows]))
    else:
        render.console().print(render.runs_table(rows))


@click.command("show")
@run_argument()
@registry_option()
@json_option()
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


@click.command("events")
@run_argument()
@registry_option()
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


@click.command("wiring")
@click.argument("run_refs", nargs=-1, metavar="[RUN]...")
@registry_option()
@click.option("--markdown", is_flag=True,
              help="Print the wiring-gaps document of RUNs (default: the latest run of each "
                   "experiment), per TELE group.")
@json_option()
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


@click.command("delete")
@click.argument("run_refs", nargs=-1, required=True, metavar="RUN...")
@registry_option()
@click.option("--with-children", is_flag=True,
              help="Also delete the child runs of a run deleted (a sweep's trials).")
@click.option("--dry-run", is_flag=True, help="List what would be removed; change nothing.")
@mlflow_uri_option()
@json_option()
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


@click.command("gc")
@registry_option()
@click.option("--dry-run", is_flag=True, help="List what would be removed; change nothing.")
@click.option("--mlflow", "with_mlflow", is_flag=True,
              help="Also delete the MLflow runs recorded from this registry whose run is gone.")
@mlflow_uri_option(STORE_URI_HELP)
@json_option()
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


@click.command("tag")
@run_argument()
@click.argument("tags", nargs=-1, metavar="KEY=VALUE...")
@click.option("--remove", "removed", multiple=True, metavar="KEY", help="Remove the tag KEY "
              "(repeatable).")
@registry_option()
@mlflow_uri_option()
@json_option()
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


@click.command("note")
@run_argument()
@click.argument("text")
@registry_option()
@mlflow_uri_option()
@json_option()
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
