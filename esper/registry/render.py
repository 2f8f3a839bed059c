"""How ``esper runs``, ``esper show`` and ``esper events`` present registry data.

Terminal output is built with rich; machine output is JSON with a stable shape:
- a run (``run_to_dict``): run_id, name, experiment, kind (run, sweep, trial, regression),
  status, started_at / ended_at /
  heartbeat_at (unix seconds, null when unknown), duration_s, event_count, events_dropped,
  seed, device, host, pid, user, git_commit, git_dirty, versions, group_id, parent_run_id,
  mlflow ids, tags, notes, spec_path, spec_sha256, config_sha256, exit_reason; with
  ``details=True`` also config, traceback and sinks (per sink: written, dropped, failures,
  last_error);
- ``esper runs --json`` adds columns ({key: value} of the ``--column`` keys; NaN and
  infinities as the strings "NaN", "Infinity", "-Infinity");
- ``esper show --json`` adds event_counts ({type: count}) and metrics (per key: count,
  first_step, last_step, last, min, max);
- ``esper events --format jsonl``: one envelope per line (``encode_event``).

User text (names, tags, notes, config values, messages) is shown literally: the console of
``console()`` reads no markup or emoji codes in strings and writes every character that is
not printable as its escape (``visible``), so a name like ``[/]`` or ``"\\x1b[31m"`` can
neither break the output nor drive the terminal.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from esper.leyline.codec import encode_payload, with_float_names
from esper.leyline.events import TelemetryEvent
from esper.registry.records import RunKind, RunRecord, RunStatus, RunSummary
from esper.registry.run_table import RunRow, Value

_STATUS_STYLE = {
    RunStatus.RUNNING: "cyan",
    RunStatus.FINISHED: "green",
    RunStatus.FAILED: "red",
    RunStatus.KILLED: "yellow",
    RunStatus.CRASHED: "magenta",
}
_DATA_WIDTH = 100  # characters of an event's payload shown in a table cell


class _LiteralConsole(Console):
    """A console that shows every string it renders (cells, titles, printed text) literally."""

    def render_str(self, text: str, **options: Any) -> Text:
        options.update(markup=False, emoji=False, highlight=False)
        return super().render_str(visible(text), **options)


def console() -> Console:
    """A console on stdout; wide when stdout is not a terminal, so tables are not squeezed.
    Strings are rendered literally (``_LiteralConsole``)."""
    return _LiteralConsole(width=None if sys.stdout.isatty() else 200)


def visible(text: str, *, newlines: bool = False) -> str:
    """``text`` with each character that is not printable (newline, ESC, other C0 and C1
    controls, DEL, bidi overrides, line separators) written as its Python escape: ``\\n``,
    ``\\x1b``, ``\\u202e``. ``newlines=True`` keeps line breaks (multi-line blocks)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or (newlines and c == "\n")
                   else c.encode("unicode_escape").decode("ascii") for c in text)


def run_to_dict(run: RunRecord, *, details: bool = False) -> dict[str, Any]:
    """A run as a JSON-ready dict (the shape is documented in this module's docstring)."""
    out: dict[str, Any] = {
        "run_id": run.run_id,
        "name": run.name,
        "experiment": run.experiment,
        "kind": run.kind.value,
        "status": run.status.value,
        "started_at": run.started_at,
        "ended_at": run.ended_at,
        "heartbeat_at": run.heartbeat_at,
        "duration_s": run.duration,
        "event_count": run.event_count,
        "events_dropped": run.events_dropped,
        "seed": run.seed,
        "device": run.device,
        "host": run.host,
        "pid": run.pid,
        "user": run.user,
        "git_commit": run.git_commit,
        "git_dirty": run.git_dirty,
        "esper_version": run.esper_version,
        "torch_version": run.torch_version,
        "python_version": run.python_version,
        "group_id": run.group_id,
        "parent_run_id": run.parent_run_id,
        "mlflow_run_id": run.mlflow_run_id,
        "mlflow_experiment_id": run.mlflow_experiment_id,
        "tags": dict(run.tags),
        "notes": run.notes,
        "spec_path": run.spec_path,
        "spec_sha256": run.spec_sha256,
        "config_sha256": run.config_sha256,
        "exit_reason": run.exit_reason,
    }
    if details:
        out["config"] = run.config
        out["traceback"] = run.traceback
        out["sinks"] = [dataclasses.asdict(s) for s in run.sinks]
    return out


def summary_to_dict(summary: RunSummary) -> dict[str, Any]:
    out = run_to_dict(summary.run, details=True)
    out["event_counts"] = dict(summary.event_counts)
    out["metrics"] = {m.key: {name: value for name, value in dataclasses.asdict(m).items()
                              if name != "key"} for m in summary.metrics}
    return out


def to_json(value: Any) -> str:
    return json.dumps(value, indent=2)


def run_row_to_dict(row: RunRow) -> dict[str, Any]:
    """A run of ``esper runs --json``: ``run_to_dict`` and its chosen columns."""
    return {**run_to_dict(row.run), "columns": {key: with_float_names(value)
                                                for key, value in row.values.items()}}


def runs_table(rows: Sequence[RunRow]) -> RenderableType:
    """id, name, experiment, kind, status, started, duration, events, then the chosen columns:
    one row per run."""
    if not rows:
        return Text("no runs match")
    table = Table(box=None, header_style="bold")
    # ids are what a user copies into show / compare: never shortened, whatever the width
    table.add_column("id", no_wrap=True, min_width=max(len(row.run.run_id) for row in rows))
    for column in ("name", "experiment"):
        table.add_column(column)
    table.add_column("kind", no_wrap=True)
    for column in ("status", "started", "duration"):
        table.add_column(column)
    table.add_column("events", justify="right")
    for key in rows[0].values:
        table.add_column(key, justify="right")
    for row in rows:
        run = row.run
        events = f"{run.event_count:,}"
        if run.events_dropped:
            events += f" ({run.events_dropped:,} dropped)"
        table.add_row(
            run.run_id,
            run.name,
            run.experiment,
            _kind(run),
            _status(run.status),
            _when(run.started_at),
            _duration(run),
            events,
            *(_column_cell(value) for value in row.values.values()),
        )
    return table


def summary_view(summary: RunSummary) -> RenderableType:
    """Status, timings, provenance, sinks, event counts by type, metrics, config."""
    run = summary.run
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    rows: list[tuple[str, str | Text]] = [
        ("run", f"{run.run_id}  {run.name}"),
        ("experiment", run.experiment),
        ("status", _status(run.status)),
        ("started", _when(run.started_at)),
        ("ended", _when(run.ended_at)),
        ("duration", _duration(run)),
        ("last heartbeat", _when(run.heartbeat_at)),
        ("events", f"{run.event_count:,}"),
        ("seed / device", f"{run.seed} / {run.device}"),
        ("host / pid / user", f"{run.host} / {run.pid} / {run.user or '-'}"),
        ("git", _git(run)),
        ("versions", f"esper {run.esper_version}, torch {run.torch_version or '-'}, "
                     f"python {run.python_version}"),
        ("config sha256", run.config_sha256),
    ]
    if run.spec_path:
        rows.append(("spec", f"{run.spec_path} ({(run.spec_sha256 or 'missing')[:12]})"))
    if run.tags:
        rows.append(("tags", ", ".join(f"{k}={v}" for k, v in run.tags.items())))
    if run.notes:
        rows.append(("notes", run.notes))
    if run.group_id or run.parent_run_id:
        rows.append(("group / parent", f"{run.group_id or '-'} / {run.parent_run_id or '-'}"))
    if run.exit_reason:
        rows.append(("exit reason", run.exit_reason))
    if run.mlflow_run_id:
        rows.append(("mlflow", f"run {run.mlflow_run_id} in experiment {run.mlflow_experiment_id}"))
    for name, value in rows:
        facts.add_row(name, value)
    parts: list[RenderableType] = [facts]
    if run.sinks:
        parts.append(_sinks_table(run))
    parts.append(_counts_table(summary))
    if summary.metrics:
        parts.append(_metrics_table(summary))
    parts.append(Text("config", style="bold"))
    parts.append(Text(json.dumps(run.config, indent=2, sort_keys=True)))
    if run.traceback:
        parts.append(Text("traceback", style="bold"))
        parts.append(Text(visible(run.traceback.rstrip(), newlines=True)))
    return Group(*parts)


def events_table(events: Iterable[TelemetryEvent]) -> RenderableType:
    table = Table(box=None, header_style="bold")
    for column in ("seq", "time", "type", "severity", "batch", "env", "epoch", "slot", "seed"):
        table.add_column(column, no_wrap=True)
    table.add_column("message")
    table.add_column("data", overflow="fold")
    for e in events:
        data = encode_payload(e.data)
        if len(data) > _DATA_WIDTH:
            data = data[: _DATA_WIDTH - 1] + "…"
        table.add_row(
            str(e.seq),
            datetime.fromtimestamp(e.ts).strftime("%H:%M:%S.%f")[:-3],
            e.event_type.value,
            e.severity.value,
            *(_cell(v) for v in (e.batch, e.env_id, e.epoch, e.slot_id, e.seed_id)),
            e.message,
            data,
        )
    return table


def _cell(value: object) -> str:
    return "-" if value is None else str(value)


def _sinks_table(run: RunRecord) -> RenderableType:
    table = Table(title="sinks", title_justify="left", box=None, header_style="bold")
    for column in ("sink", "written", "dropped", "failures", "last error"):
        table.add_column(column)
    for s in run.sinks:
        dropped = Text(f"{s.dropped:,}", style="red" if s.dropped else "")
        table.add_row(s.name, f"{s.written:,}", dropped, str(s.failures), s.last_error or "-")
    return table


def _counts_table(summary: RunSummary) -> RenderableType:
    table = Table(title="events by type", title_justify="left", box=None, header_style="bold")
    table.add_column("type")
    table.add_column("count", justify="right")
    for event_type, count in summary.event_counts:
        table.add_row(event_type, f"{count:,}")
    return table


def _metrics_table(summary: RunSummary) -> RenderableType:
    table = Table(title="metrics", title_justify="left", box=None, header_style="bold")
    for column in ("key", "count", "steps", "last", "min", "max"):
        table.add_column(column)
    for m in summary.metrics:
        table.add_row(
            m.key, str(m.count), f"{m.first_step}..{m.last_step}",
            f"{m.last:.6g}", f"{m.min:.6g}", f"{m.max:.6g}",
        )
    return table


def _kind(run: RunRecord) -> str:
    """The kind, with the parent run of a trial or the replicate group of a run."""
    if run.kind is RunKind.TRIAL:
        return f"trial of {run.parent_run_id}"
    if run.group_id is not None and run.kind is not RunKind.SWEEP:
        return f"{run.kind.value} group:{run.group_id}"
    return run.kind.value


def _column_cell(value: Value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return value if isinstance(value, str) else json.dumps(value)


def _status(status: RunStatus) -> Text:
    return Text(status.value, style=_STATUS_STYLE[status])


def _when(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def _duration(run: RunRecord) -> str:
    if run.status is RunStatus.RUNNING:
        return _seconds(time.time() - run.started_at) + " so far"
    if run.duration is None:
        return "-"  # crashed: no end time
    return _seconds(run.duration)


def _seconds(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def _git(run: RunRecord) -> str:
    if run.git_commit is None:
        return "- (not a git work tree)"
    return run.git_commit[:12] + (" (dirty)" if run.git_dirty else "")


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    """A GitHub Markdown table as lines. A "|" inside a cell is escaped and a line break is
    written as <br>, so neither can split the cell or end the row; other characters that are
    not printable are written as escapes (``visible``)."""
    def line(cells: Iterable[object]) -> str:
        return "| " + " | ".join(visible(str(cell), newlines=True).replace("|", "\\|")
                                 .replace("\n", "<br>") for cell in cells) + " |"

    return [line(headers), "|" + "---|" * len(headers), *(line(row) for row in rows)]
