"""Flatten a resolved configuration to dotted keys and compare it with the defaults."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from esper.experiment.loading import spec_from_dict
from esper.experiment.spec_builder import spec_to_dict
from esper.leyline.config import ExperimentSpec


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """`{"a": {"b": 1}}` -> `{"a.b": 1}`; lists and empty mappings stay whole values."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


@dataclass(frozen=True)
class ChangedKey:
    """A dotted key whose resolved value is not the schema default."""

    key: str
    value: Any
    default: Any


def changed_from_defaults(spec: ExperimentSpec) -> list[ChangedKey]:
    """The keys of `spec` that differ from an experiment that sets nothing but its name."""
    defaults = flatten(spec_to_dict(spec_from_dict({"name": spec.name})))
    resolved = flatten(spec_to_dict(spec))
    # a default {} that the spec fills (tracking.tags: {team: x}) is the keys below it, not a
    # key of its own gone missing (it was reported as "tracking.tags: null (default {})")
    keys = list(resolved) + [key for key in defaults if key not in resolved
                             and not any(name.startswith(f"{key}.") for name in resolved)]
    return [
        ChangedKey(key, resolved.get(key), defaults.get(key))
        for key in keys
        if key != "name" and resolved.get(key) != defaults.get(key)
    ]
