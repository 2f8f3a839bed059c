"""``esper runs`` with chosen columns: values per run by key, filters and sorting on them.

A key names, in this order:
- a run field: ``name``, ``experiment``, ``status``, ``kind``, ``parent``, ``group``, ``seed``,
  ``started_at``, ``duration_s``, ``events``;
- ``tag:KEY``: the run's tag KEY;
- a named metric of the caller's ``NamedMetrics`` (``esper runs`` passes the outcome metrics of
  ``esper.compare.outcomes``, e.g. ``final_val_accuracy``: the registry imports no other esper
  package);
- a key with a ``/``: the last value of that series of the ``metrics`` table
  (``episode/val_accuracy``);
- else a dotted key of the run's resolved config (``training.envs``, ``policy.type``).

A run without a value for a key (not measured, not in its config) shows ``None``; a condition
on that key leaves it out, and sorting puts it last. A key no listed run has a value for is
refused (``ColumnError``), so a misspelt key is not a column of blanks.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from esper.registry.errors import RegistryError
from esper.registry.records import RunRecord

if TYPE_CHECKING:
    from esper.registry.registry import Registry

Value = str | int | float | bool | None

RUN_FIELDS: dict[str, Callable[[RunRecord], Value]] = {
    "name": lambda r: r.name,
    "experiment": lambda r: r.experiment,
    "status": lambda r: r.status.value,
    "kind": lambda r: r.kind.value,
    "parent": lambda r: r.parent_run_id,
    "group": lambda r: r.group_id,
    "seed": lambda r: r.seed,
    "started_at": lambda r: r.started_at,
    "duration_s": lambda r: r.duration,
    "events": lambda r: r.event_count,
}
TAG_PREFIX = "tag:"
OPERATORS: dict[str, Callable[[object, object], bool]] = {
    "=": lambda a, b: a == b, "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,  # type: ignore[operator]
    ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,  # type: ignore[operator]
}
_CONDITION = re.compile(r"\s*(?P<key>[^<>=!]+?)\s*(?P<op>!=|<=|>=|=|<|>)\s*(?P<value>.*)", re.S)


class ColumnError(RegistryError):
    """A column, condition or sort key that cannot be used."""

    exit_code = 2


@dataclass(frozen=True)
class NamedMetrics:
    """Metrics computed per run outside the registry, by name."""

    names: frozenset[str]
    # (run id, the names wanted) -> value by name, computing only those
    of_run: Callable[[str, Collection[str]], Mapping[str, float | None]]


@dataclass(frozen=True)
class Condition:
    """``KEY OP VALUE``: numbers compare as numbers, anything else as its text (JSON for
    booleans and null: ``policy.train=false``)."""

    key: str
    op: str
    value: str

    @classmethod
    def parse(cls, text: str) -> Condition:
        """Raises:
            ColumnError: not KEY OP VALUE, or an order (< <= > >=) against a non-number."""
        match = _CONDITION.fullmatch(text)
        if match is None:
            raise ColumnError(f"--where {text!r}: expected KEY OP VALUE with OP one of "
                              f"{' '.join(OPERATORS)}, e.g. final_val_accuracy>=90")
        condition = cls(match["key"], match["op"], match["value"].strip())
        if condition.op not in ("=", "!=") and _number(condition.value) is None:
            raise ColumnError(f"--where {text!r}: {condition.op} compares numbers, "
                              f"and {condition.value!r} is not one")
        return condition

    def holds(self, value: Value) -> bool:
        """Whether a run's ``value`` meets the condition (never when it has none)."""
        if value is None:
            return False
        wanted, number = _number(self.value), _number(value)
        if wanted is not None and number is not None:
            return OPERATORS[self.op](number, wanted)
        if self.op not in ("=", "!="):
            return False
        return OPERATORS[self.op](_text(value), self.value)


@dataclass(frozen=True)
class SortKey:
    key: str
    descending: bool = False

    @classmethod
    def parse(cls, text: str) -> SortKey:
        """``KEY``, ``KEY:asc`` or ``KEY:desc``."""
        key, _, order = text.rpartition(":") if text.endswith((":asc", ":desc")) else (text, "", "")
        return cls(key, order == "desc")


@dataclass(frozen=True)
class RunRow:
    """A run and its values of the chosen keys."""

    run: RunRecord
    values: dict[str, Value]


def run_rows(registry: Registry, runs: Sequence[RunRecord], columns: Sequence[str],
             where: Sequence[Condition] = (), sort: Sequence[SortKey] = (),
             metrics: NamedMetrics | None = None) -> list[RunRow]:
    """``runs`` (newest first) with their ``columns``, those meeting every condition of
    ``where``, ordered by ``sort`` (first key first; a missing value last either way).

    Raises:
        ColumnError: a key no run of ``runs`` has a value for.
    """
    keys = list(dict.fromkeys([*columns, *(c.key for c in where), *(s.key for s in sort)]))
    named = metrics if metrics is not None else NamedMetrics(frozenset(), lambda _, __: {})
    rows = [RunRow(run, _values(registry, run, keys, named)) for run in runs]
    for key in keys:
        if rows and not _always_defined(key, named) and all(r.values[key] is None for r in rows):
            raise ColumnError(f"unknown key {key!r}: no run listed has it (a run field: "
                              f"{', '.join(RUN_FIELDS)}; tag:KEY; an outcome metric; a metric "
                              "series such as episode/val_accuracy; or a config key such as "
                              "training.envs)")
    rows = [r for r in rows if all(c.holds(r.values[c.key]) for c in where)]
    for key in reversed(sort):  # stable: the first key decides last
        present = [r for r in rows if not _missing(r.values[key.key])]
        present.sort(key=lambda r: _order(r.values[key.key]), reverse=key.descending)
        rows = present + [r for r in rows if _missing(r.values[key.key])]
    return [RunRow(r.run, {k: r.values[k] for k in columns}) for r in rows]


def _values(registry: Registry, run: RunRecord, keys: Sequence[str],
            named: NamedMetrics) -> dict[str, Value]:
    wanted = [key for key in keys if key in named.names]
    computed = named.of_run(run.run_id, wanted) if wanted else {}
    values: dict[str, Value] = {}
    for key in keys:
        if key in RUN_FIELDS:
            values[key] = RUN_FIELDS[key](run)
        elif key.startswith(TAG_PREFIX):
            values[key] = run.tags.get(key.removeprefix(TAG_PREFIX))
        elif key in named.names:
            values[key] = computed[key]
        elif "/" in key:
            values[key] = registry.last_metric(run.run_id, key)
        else:
            values[key] = _config_value(run.config, key)
    return values


def _config_value(config: Mapping[str, object], key: str) -> Value:
    """The value at the dotted ``key`` (a list or mapping as its JSON text); None: absent."""
    value: object = config
    for part in key.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value if value is None or isinstance(value, (str, int, float, bool)) else _text(value)


def _always_defined(key: str, named: NamedMetrics) -> bool:
    """Keys that are real even when no run has a value (a run field, a tag, a named metric)."""
    return key in RUN_FIELDS or key.startswith(TAG_PREFIX) or key in named.names


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return None


def _text(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _missing(value: Value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _order(value: Value) -> tuple[int, float, str]:
    """Numbers before text, each in its own order."""
    number = _number(value)
    return (0, number, "") if number is not None else (1, 0.0, _text(value))

