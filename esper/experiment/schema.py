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


def _is_integer(checker: Any, instance: Any) -> bool:
    # JSON Schema counts 2.0 as an integer; YAML reads it as a float and the spec would keep it
    return isinstance(instance, int) and not isinstance(instance, bool)


def _is_number(checker: Any, instance: Any) -> bool:
    # NaN passes every minimum and maximum (all comparisons are false), and infinity every
    # bound on its side: neither is a JSON number, and the config is stored and printed as JSON
    return (isinstance(instance, (int, float)) and not isinstance(instance, bool)
            and math.isfinite(instance))


_ExperimentValidator = validators.extend(
    Draft202012Validator,
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine_many(
        {"integer": _is_integer, "number": _is_number}),
)


@cache
def validator() -> Draft202012Validator:
    """A validator for experiment documents (integers are ints, NaN and infinity are no numbers)."""
    schema = experiment_schema()
    Draft202012Validator.check_schema(schema)
    return _ExperimentValidator(schema)


def with_defaults(document: dict[str, Any]) -> dict[str, Any]:
    """A copy of a valid `document` with every default of the schema filled in."""
    return _fill(copy.deepcopy(document), experiment_schema())


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
