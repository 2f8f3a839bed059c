"""The determinism rule (esper.leyline.determinism) kept in step with the payload classes: every
field it names is a float field of its event's payload, and every float field named like a
clock or process reading is either ignored (WALL_CLOCK_FIELDS) or compared for a stated reason
(NOT_WALL_CLOCK), so a new ``*_ms`` field cannot slip into the check unnoticed."""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Iterator

from esper.leyline.determinism import NOT_WALL_CLOCK, WALL_CLOCK_FIELDS, drop_wall_clock
from esper.leyline.events import PAYLOAD_TYPES, TelemetryEventType

#: Field names that read like a time, a duration, a rate or a memory size.
_READING = re.compile(r"(_s|_ms|_us|_ns|_mb|_gb|_at|_time|_seconds)$|^(fps|ts|time|duration)$"
                      r"|per_s|clock")


def _float_fields(cls: type, prefix: str = "") -> Iterator[str]:
    """Dotted paths of the float fields of dataclass `cls` (``[*]``: any index of a tuple)."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        yield from _leaves(hints[f.name], f"{prefix}{f.name}")


def _leaves(hint: object, path: str) -> Iterator[str]:
    args, origin = typing.get_args(hint), typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            yield from _leaves(arg, path)
    elif origin is tuple:
        yield from _leaves(args[0], f"{path}[*]")
    elif dataclasses.is_dataclass(hint):
        yield from _float_fields(hint, f"{path}.")  # type: ignore[arg-type]
    elif hint is float:
        yield path


def test_every_named_field_is_a_float_field_of_its_payload():
    for event_type, paths in [*WALL_CLOCK_FIELDS.items(), *NOT_WALL_CLOCK.items()]:
        floats = set(_float_fields(PAYLOAD_TYPES[event_type]))
        missing = [path for path in paths if path not in floats]
        assert not missing, f"{event_type.value} has no float field {missing}"
        assert not set(WALL_CLOCK_FIELDS.get(event_type, ())) & set(
            NOT_WALL_CLOCK.get(event_type, {})), f"{event_type.value}: in both tables"


def test_every_float_field_named_like_a_reading_is_classified():
    unclassified = [
        f"{event_type.value} {path}"
        for event_type, cls in PAYLOAD_TYPES.items() for path in _float_fields(cls)
        if _READING.search(path.rpartition(".")[2].removesuffix("[*]"))
        and path not in WALL_CLOCK_FIELDS.get(event_type, ())
        and path not in NOT_WALL_CLOCK.get(event_type, {})]
    assert not unclassified, ("float fields named like a clock or memory reading: add each to "
                              "WALL_CLOCK_FIELDS or NOT_WALL_CLOCK (esper.leyline.determinism): "
                              + ", ".join(unclassified))


def test_drop_wall_clock_removes_nested_fields_at_every_index():
    payload = {"val_loss": 1.0, "slots": [
        {"slot_id": "r0c0", "telemetry": {"captured_at": 5.0, "alpha": 0.5}},
        {"slot_id": "r0c1", "telemetry": None},
        {"slot_id": "r0c9", "telemetry": {"captured_at": 6.0}}]}
    assert drop_wall_clock(TelemetryEventType.EPOCH_COMPLETED, payload) == {
        "val_loss": 1.0, "slots": [{"slot_id": "r0c0", "telemetry": {"alpha": 0.5}},
                                   {"slot_id": "r0c1", "telemetry": None},
                                   {"slot_id": "r0c9", "telemetry": {}}]}
    assert drop_wall_clock(TelemetryEventType.EPISODE_OUTCOME, {"x_ms": 1}) == {"x_ms": 1}
