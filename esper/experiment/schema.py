"""The experiment JSON Schema: loading it, its defaults, and walking it by key path."""

from __future__ import annotations

import copy
import json
import math
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator, validators


@cache
def experiment_schema() -> dict[str, Any]:
    """The experiment schema shipped with the package (schemas/experiment.schema.json)."""
    text = resources.files("esper").joinpath("schemas/experiment.schema.json").read_text()
    return json.loads(text)


def _is_number(checker: Any, instance: Any) -> bool:
    # NaN passes every minimum and maximum (all comparisons are false), and infinity every
    # bound on its side: neither is a JSON number, and the config is stored and printed as JSON
    return (isinstance(instance, (int, float)) and not isinstance(instance, bool)
            and math.isfinite(instance))


_ExperimentValidator = validators.extend(
    Draft202012Validator,
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine("number", _is_number),
)


@cache
def validator() -> Draft202012Validator:
    """A validator for experiment documents (NaN and infinity are no numbers).

    Integers are JSON Schema's (draft 2020-12): any number with a zero fractional part, so
    `2.0` and `1e3` are integers, as for any validator of the published schema; `whole_numbers`
    turns them into ints."""
    schema = experiment_schema()
    Draft202012Validator.check_schema(schema)
    return _ExperimentValidator(schema)


def whole_numbers(value: Any, schema: dict[str, Any]) -> Any:
    """`value` (valid for `schema`) with every float that stands for an integer of the schema
    (`2.0` for a key of type integer) turned into that int; the rest as it was."""
    if isinstance(value, float):
        types = schema_types(schema)
        return int(value) if "integer" in types and "number" not in types else value
    if isinstance(value, list):
        items = schema.get("items", {})
        return [whole_numbers(item, items if isinstance(items, dict) else {}) for item in value]
    if isinstance(value, dict):
        return {key: whole_numbers(item, child_schema(schema, key) or {})
                for key, item in value.items()}
    return value


def with_defaults(document: dict[str, Any], schema: dict[str, Any] | None = None
                  ) -> dict[str, Any]:
    """A copy of a valid `document` with every default of `schema` filled in (default: the
    experiment schema; else a part of it, for a part of the document)."""
    return _fill(copy.deepcopy(document), experiment_schema() if schema is None else schema)


def _fill(value: Any, schema: dict[str, Any]) -> Any:
    if not isinstance(value, dict):
        return value
    for key, child in schema.get("properties", {}).items():
        if key not in value and "default" in child:
            value[key] = copy.deepcopy(child["default"])
        if key in value:
            value[key] = _fill(value[key], child)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        for key in set(value) - set(schema.get("properties", {})):
            value[key] = _fill(value[key], extra)
    return value


def property_names(schema: dict[str, Any]) -> list[str] | None:
    """The keys an object schema allows, or None when it allows any key."""
    if schema.get("additionalProperties", True) is not False:
        return None
    return list(schema.get("properties", {}))


def is_mapping(schema: dict[str, Any]) -> bool:
    """Whether `schema` allows a mapping (a schema with no type allows anything)."""
    types = schema.get("type", "object") if "enum" not in schema else []
    return "object" in (types if isinstance(types, list) else [types])


def schema_types(schema: dict[str, Any], default: str | None = None) -> list[str]:
    """The JSON types `schema` names (`"type": "integer"` -> ["integer"]); `[default]`, or
    none, when it names no type."""
    types = schema.get("type", [] if default is None else [default])
    return [types] if isinstance(types, str) else list(types)


def schema_at(keys: list[str]) -> dict[str, Any] | None:
    """The schema of the dotted config key `keys`, or None when the schema has no such key."""
    schema = experiment_schema()
    for key in keys:
        child = child_schema(schema, key)
        if child is None:
            return None
        schema = child
    return schema


def value_validator(schema: dict[str, Any]) -> Draft202012Validator:
    """A validator of one value against `schema`, a part of the experiment schema, with the
    experiment validator's types."""
    return validator().evolve(schema=schema)


def child_schema(schema: dict[str, Any], key: str) -> dict[str, Any] | None:
    """The schema of `key` inside an object `schema`, or None when the key is not allowed."""
    if not is_mapping(schema):
        return None
    if key in schema.get("properties", {}):
        return schema["properties"][key]
    extra = schema.get("additionalProperties", True)
    if extra is False:
        return None
    return extra if isinstance(extra, dict) else {}
