"""`esper compare` output: a rich terminal view, Markdown, JSON and CSV of a `Comparison`.

- JSON: ``Comparison.to_dict()`` (``Comparison.from_dict`` reads it back); NaN is written as
  the token NaN, like the registry's payloads.
- CSV: long format, one value per line: section, key, side (its label), field, value. Fields:
  ``value`` for every section, plus ``delta`` / ``delta_pct`` (metrics), ``n_a`` ... ``p_value``
  / ``note`` (statistics), ``seq`` / ``event_type_a`` / ``event_type_b`` / ``identical`` /
  ``data.<field>`` (divergence, side = the other run).
- Markdown and the terminal show the same sections, as tables.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from esper.compare.divergence import Divergence
from esper.compare.report import Comparison
from esper.registry.render import markdown_table

NOT_MEASURED = "—"


@dataclass(frozen=True)
class Section:
    title: str
    headers: list[str]
    rows: list[list[str]]


def to_json(comparison: Comparison) -> str:
    return json.dumps(comparison.to_dict(), indent=2)


def sections(c: Comparison) -> list[Section]:
    """The sections that have something to say (all of them when `c.show_all`), as text cells."""
    labels = [side.label for side in c.sides]
    found = [Section("sides", ["side", "runs", "names", "seeds"], [
        [s.label, str(len(s.run_ids)) + (f" (group {s.group_id})" if s.group_id else ""),
         ", ".join(s.names), ", ".join(map(str, s.seeds))] for s in c.sides])]
    found.append(Section("config (keys that differ)" if not c.show_all else "config",
                         ["key", *labels], [[r.key, *map(_json, r.values)] for r in c.config]))
    found.append(Section("outcome metrics (delta against the first side)", ["metric", *labels], [
        [r.name, _number(r.values[0]), *(_with_delta(v, d, p) for v, d, p in
                                         zip(r.values[1:], r.deltas[1:], r.delta_pcts[1:]))]
        for r in c.metrics]))
    found.append(Section("replicate statistics (side against the first side)", [
        "metric", "side", "n", "mean ± std (first)", "mean ± std (side)", "difference", "95% CI",
        "Welch p", "note"], [
        [r.metric, labels[r.side], f"{r.stats.n_a} / {r.stats.n_b}",
         _mean_std(r.stats.mean_a, r.stats.std_a), _mean_std(r.stats.mean_b, r.stats.std_b),
         _number(r.stats.difference),
         NOT_MEASURED if r.stats.ci_low is None else
         f"[{_number(r.stats.ci_low)}, {_number(r.stats.ci_high)}] {r.stats.interval}",
         _number(r.stats.p_value), r.stats.note or ""] for r in c.statistics]))
    for title, rows in (("seed lifecycle (per run)", c.lifecycle), ("events by type", c.events),
                        ("anomalies", c.anomalies), ("wiring outcomes", c.wiring)):
        found.append(Section(title, ["", *labels], [[r.key, *map(_cell, r.values)] for r in rows]))
    found.append(Section("event streams (same config and seed)",
                         ["runs", "result", "differing fields"],
                         [_divergence_row(d) for d in c.divergence]))
    return [s for s in found if s.rows]


def to_markdown(c: Comparison) -> str:
    out = []
    for section in sections(c):
        out.append(f"### {section.title}\n")
        out += markdown_table(section.headers, section.rows)
        out.append("")
    return "\n".join(out)


def to_rich(c: Comparison) -> RenderableType:
    tables: list[RenderableType] = []
    for section in sections(c):
        table = Table(title=section.title, title_justify="left", header_style="bold", box=None)
        for header in section.headers:
            table.add_column(header)
        for row in section.rows:
            table.add_row(*row)
        tables += [table, Text("")]
    return Group(*tables)


def to_csv(c: Comparison) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["section", "key", "side", "field", "value"])
    writer.writerows(_csv_rows(c))
    return buffer.getvalue()


def _csv_rows(c: Comparison) -> Iterator[list[Any]]:
    labels = [side.label for side in c.sides]
    for section, rows in (("config", c.config), ("lifecycle", c.lifecycle), ("events", c.events),
                          ("anomalies", c.anomalies), ("wiring", c.wiring)):
        for row in rows:
            for label, value in zip(labels, row.values):
                yield [section, row.key, label, "value",
                       _json(value) if isinstance(value, (list, dict)) else value]
    for metric in c.metrics:
        for i, label in enumerate(labels):
            yield ["metrics", metric.name, label, "value", metric.values[i]]
            if i:
                yield ["metrics", metric.name, label, "delta", metric.deltas[i]]
                yield ["metrics", metric.name, label, "delta_pct", metric.delta_pcts[i]]
    for stat in c.statistics:
        for name, value in asdict(stat.stats).items():
            yield ["statistics", stat.metric, labels[stat.side], name, value]
    for d in c.divergence:
        key = f"{d.run_a} vs {d.run_b}"
        for name in ("identical", "seq", "event_type_a", "event_type_b"):
            yield ["divergence", key, d.run_b, name, getattr(d, name)]
        for f in d.fields:
            yield ["divergence", key, d.run_b, f.field, f"{_json(f.a)} -> {_json(f.b)}"]


def _divergence_row(d: Divergence) -> list[str]:
    runs = f"{d.run_a} vs {d.run_b}"
    if d.identical:
        return [runs, f"identical ({d.events_a} events, ts, wall-clock and memory fields "
                      "ignored)", ""]
    result = (f"first divergence at seq {d.seq}: {d.event_type_a or '(no event)'} vs "
              f"{d.event_type_b or '(no event)'} ({d.events_a} and {d.events_b} events)")
    fields = "; ".join(f"{f.field}: {_json(f.a)} -> {_json(f.b)}" for f in d.fields[:8])
    more = f"; and {len(d.fields) - 8} more" if len(d.fields) > 8 else ""
    return [runs, result, fields + more]


def _json(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _number(value: float | None) -> str:
    if value is None:
        return NOT_MEASURED
    return f"{value:.4g}" if isinstance(value, float) and not math.isnan(value) else str(value)


def _cell(value: Any) -> str:
    return NOT_MEASURED if value is None else _number(value) if isinstance(value, float) \
        else str(value)


def _with_delta(value: float | None, delta: float | None, pct: float | None) -> str:
    if delta is None:
        return _number(value)
    shown = f"{_number(value)} ({delta:+.4g}"
    return shown + (f", {pct:+.1f}%)" if pct is not None else ")")


def _mean_std(mean: float | None, std: float | None) -> str:
    return _number(mean) + ("" if std is None else f" ± {_number(std)}")
