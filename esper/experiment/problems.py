"""Turn schema violations into located, human problems with what was expected."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable
from typing import Any

from jsonschema import ValidationError

from esper.experiment.yaml_source import ParsedDocument, Path, abridged
from esper.leyline.errors import SpecProblem

_TYPE_NAMES = {
    "object": "a mapping", "array": "a list", "string": "a string", "integer": "an integer",
    "number": "a number", "boolean": "true or false", "null": "null",
}


def dotted(path: Path) -> str:
    """`('slots', 'enabled', 1)` -> `slots.enabled[1]`."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def suggestion(word: object, choices: Iterable[object], *, cutoff: float = 0.6) -> str:
    """`" (did you mean 'x'?)"` for the closest choice, or "".

    :param cutoff: the least `difflib` similarity, in [0, 1], of a choice worth suggesting
    """
    text, names = str(word), [str(choice) for choice in choices]
    close = difflib.get_close_matches(text, names, n=max(len(names), 1), cutoff=cutoff)
    if not close:
        return ""
    # Equally similar choices (TELE-421: TELE-420, TELE-541 and TELE-542 share 7 characters
    # in order) go to the one with the most characters in the same places (TELE-420).
    best = difflib.SequenceMatcher(None, close[0], text).ratio()  # as get_close_matches scores
    tied = [name for name in close if difflib.SequenceMatcher(None, name, text).ratio() == best]
    closest = max(tied, key=lambda name: sum(a == b for a, b in zip(text, name)))
    return f" (did you mean {closest!r}?)"


def describe(value: Any) -> str:
    """A short description of a YAML value for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return abridged(value)
    return json.dumps(value)


def problem_at(document: ParsedDocument, path: Path, message: str, *, key: bool = False) -> SpecProblem:
    """A problem located at `path` (at its key when `key`)."""
    location = document.locate(path, key=key)
    return SpecProblem(location.source, location.line, location.column, dotted(path), message)


# Keys that moved to another section: the old dotted path -> where it lives now. The signal
# tracker's thresholds applied to every policy type while set under policy.heuristic (issue 23).
MOVED_KEYS = {f"policy.heuristic.{name}": f"signals.{name}" for name in (
    "stabilisation_epochs", "stabilisation_min_change", "stabilisation_max_change",
    "plateau_min_gain")}

# Keys added since, each with the behaviour an esper before it had: a config stored without the
# key ran that way, so rerunning or comparing it must not take the new default.
ADDED_KEYS = {"training.batch_envs": False}  # the envs stepped one after another


def moved_key(path: Path) -> str | None:
    """Why the key at `path` is unknown when it moved elsewhere (its new path); else None."""
    new = MOVED_KEYS.get(dotted(path))
    if new is None:
        return None
    return (f"{path[-1]!r} moved to {new}: the host-signal thresholds apply to every policy "
            "type, not only the heuristic (expected it under the top-level 'signals' section)")


INT_RANGE = range(-(2**63), 2**63)  # integers are 64-bit, as SQLite stores them


def out_of_range_integers(document: ParsedDocument) -> list[SpecProblem]:
    """A problem for every integer of `document` beyond 64 bits (for the keys whose schema sets
    no maximum; the others report their own range)."""
    return _out_of_range(document, document.data, ())


def _out_of_range(document: ParsedDocument, value: Any, path: Path) -> list[SpecProblem]:
    if isinstance(value, dict | list):
        items = value.items() if isinstance(value, dict) else enumerate(value)
        return [problem for key, item in items
                for problem in _out_of_range(document, item, path + (key,))]
    if type(value) is not int or value in INT_RANGE:
        return []
    return [problem_at(document, path, f"{value} is out of range (expected a 64-bit integer, "
                       f"{INT_RANGE.start} to {INT_RANGE.stop - 1})")]


def schema_problems(document: ParsedDocument, error: ValidationError, prefix: Path = ()
                    ) -> list[SpecProblem]:
    """The located problems one jsonschema error stands for (one per unknown key); `prefix`:
    the path of the value validated, when it is not the whole document."""
    path: Path = prefix + tuple(error.absolute_path)
    if document.is_rejected(path):
        return []  # the value was dropped for a YAML problem, reported already
    schema = error.schema if isinstance(error.schema, dict) else {}
    kind = error.validator
    if kind == "additionalProperties" and schema.get("additionalProperties") is False:
        allowed = list(schema.get("properties", {}))
        unknown = [key for key in error.instance if key not in allowed]
        return [
            problem_at(
                document, path + (key,),
                moved_key(path + (key,)) or f"unknown key {abridged(key)}"
                f"{suggestion(key, allowed)}; expected one of: {', '.join(allowed)}",
                key=True,
            )
            for key in unknown
        ]
    if "propertyNames" in error.absolute_schema_path:
        key = error.instance
        return [problem_at(document, path + (key,), f"key {_message(error, key)}", key=True)]
    if kind == "uniqueItems":
        index = _first_repeat(error.instance)
        if document.is_rejected(path + (index,)):
            return []
        return [problem_at(document, path + (index,), _message(error, error.instance[index]))]
    return [problem_at(document, path, _message(error, error.instance))]


def _first_repeat(items: list[Any]) -> int:
    for index, item in enumerate(items):
        if item in items[:index]:
            return index
    raise ValueError("no repeated item")


def _message(error: ValidationError, value: Any) -> str:
    schema = error.schema if isinstance(error.schema, dict) else {}
    kind, rule = error.validator, error.validator_value
    if kind == "enum":
        choices = ", ".join(describe(choice) for choice in rule)
        return f"{describe(value)} is not allowed{suggestion(value, rule)}; expected one of: {choices}"
    if kind == "type":
        types = [rule] if isinstance(rule, str) else rule
        expected = " or ".join(_TYPE_NAMES[name] for name in types)
        return f"expected {expected}, got {describe(value)}"
    if kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        return f"{describe(value)} is out of range (expected {_range(schema)})"
    if kind == "required":
        missing = [name for name in rule if name not in value]
        return f"missing required key {missing[0]!r}"
    if kind == "pattern":
        what = schema.get("description", f"a string matching {rule}")
        return f"{describe(value)} is not valid (expected {what})"
    if kind == "uniqueItems":
        return f"{describe(value)} appears more than once (expected unique items)"
    if kind in ("minItems", "minProperties"):
        return f"expected at least {rule} item{'s' if rule != 1 else ''}, got {len(value)}"
    if kind == "minLength":
        return f"{describe(value)} is too short (expected at least {rule} character{'s' if rule != 1 else ''})"
    if kind == "maxLength":
        return f"{describe(value)} is too long (expected at most {rule} characters)"
    if kind == "anyOf" and all(list(form) == ["required"] for form in rule):
        forms = [" and ".join(repr(name) for name in form["required"]) for form in rule]
        return f"missing required keys (expected {', or '.join(forms)})"
    return f"{error.message} (expected {json.dumps(rule)} for {kind})"


def _range(schema: dict[str, Any]) -> str:
    bounds = []
    for key, word in (("minimum", ">="), ("exclusiveMinimum", ">"),
                      ("maximum", "<="), ("exclusiveMaximum", "<")):
        if key in schema:
            bounds.append(f"{word} {schema[key]}")
    types = schema.get("type", [])
    noun = "an integer" if "integer" in (types if isinstance(types, list) else [types]) else "a number"
    return f"{noun} {' and '.join(bounds)}"
