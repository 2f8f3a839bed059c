"""Build the frozen, typed `ExperimentSpec` from a validated document with defaults."""

from __future__ import annotations

import dataclasses
import types
import typing
from functools import cache
from typing import Any, Literal

from esper.leyline.config import ExperimentSpec


def build_spec(resolved: dict[str, Any]) -> ExperimentSpec:
    """The `ExperimentSpec` of a valid document whose defaults are filled in."""
    return _build(ExperimentSpec, resolved)


def spec_to_dict(spec: Any) -> Any:
    """The resolved configuration of a spec (or one of its sections) as plain JSON data."""
    if dataclasses.is_dataclass(spec):
        return {f.name: spec_to_dict(getattr(spec, f.name)) for f in dataclasses.fields(spec)}
    if isinstance(spec, tuple):
        return [spec_to_dict(item) for item in spec]
    if isinstance(spec, dict):
        return {key: spec_to_dict(item) for key, item in spec.items()}
    return spec


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _build(annotation: Any, value: Any) -> Any:
    origin = typing.get_origin(annotation)
    if dataclasses.is_dataclass(annotation):
        hints = _hints(annotation)
        return annotation(**{f.name: _build(hints[f.name], value[f.name])
                             for f in dataclasses.fields(annotation)})
    if origin in (types.UnionType, typing.Union):
        if value is None:
            return None
        (inner,) = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return _build(inner, value)
    if origin is tuple:
        item_type = typing.get_args(annotation)[0]
        return tuple(_build(item_type, item) for item in value)
    if origin is dict:
        item_type = typing.get_args(annotation)[1]
        return {key: _build(item_type, item) for key, item in value.items()}
    if annotation is float:
        return float(value)
    if origin is Literal or annotation in (int, str, bool, Any):
        return value
    raise TypeError(f"unsupported annotation in ExperimentSpec: {annotation!r}")
