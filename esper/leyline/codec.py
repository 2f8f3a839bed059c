"""The JSON codec of telemetry payloads and envelopes (docs/architecture.md section 3).

The contract (event types, payload classes, the envelope) is ``esper.leyline.events``; this
module turns its payloads into compact JSON text and back. It needs no change when an event type
is added: it derives a codec for every class in ``PAYLOAD_TYPES`` from its type hints.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import operator
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from esper.leyline.events import PAYLOAD_TYPES, TelemetryEvent, TelemetryEventType


# ---------------------------------------------------------------------------------------------
# JSON codec. The registry stores every payload as JSON text, at up to 100,000 events/s
# (docs/architecture.md §8), so encoding is on the hot path. msgspec writes a batch of payload
# dataclasses in one call (encode_lines) in ~1.1 us each, where orjson takes ~1.5-2.3 us per call
# on this ~700-byte EPOCH_COMPLETED, dataclasses.asdict + json.dumps ~45 us and json with a
# `default` hook ~11 us. Integers of any size are written and read back exactly.
#
# NaN and infinities: JSON has no number for them. msgspec writes them as null, which would
# turn a measured NaN loss into "not measured", and the stdlib's bare NaN / Infinity tokens are
# not JSON (SQLite's json_extract and strict parsers reject them; issue 20). esper writes them as
# protobuf's JSON mapping does, as the strings "NaN", "Infinity" and "-Infinity": valid JSON,
# distinct from null, and read back as floats where the payload field is a float (a str field
# holding "NaN" stays a string). The payloads of each class are screened for non-finite floats
# in one pass, and only a payload that has one takes the slower path that names them; only a
# text that holds such a name is decoded with the float fields converted. Texts written before
# (bare NaN / Infinity tokens, in older registries) still read.
# Decoding rebuilds nested dataclasses and tuples from the type hints, so a payload read back
# equals the one emitted.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Codec:
    converters: tuple[tuple[str, Callable[[Any], Any]], ...]  # JSON value -> field value
    # the same, also turning the names of non-finite floats back into floats
    named_float_converters: tuple[tuple[str, Callable[[Any], Any]], ...]
    # list of payloads of this class -> all their floats (and Nones), nested ones included;
    # built from map / chain / attrgetter, so it iterates in C, with no Python call per payload.
    floats: Callable[[Sequence[Any]], Iterable[Any]]


def _values_getter(names: Sequence[str]) -> Callable[[Any], tuple[Any, ...]]:
    if len(names) == 1:
        get = operator.attrgetter(names[0])
        return lambda obj: (get(obj),)
    return operator.attrgetter(*names)


def _codec(cls: type, codecs: dict[type, _Codec]) -> _Codec:
    """The codec of ``cls``, built after those of the dataclasses nested in it."""
    if cls in codecs:
        return codecs[cls]
    hints = typing.get_type_hints(cls)
    names = tuple(f.name for f in dataclasses.fields(cls))
    converters: list[tuple[str, Callable[[Any], Any]]] = []
    named_float_converters: list[tuple[str, Callable[[Any], Any]]] = []
    float_names: list[str] = []
    parts: list[Callable[[Sequence[Any]], Iterable[Any]]] = []
    for name in names:
        hint = hints[name]
        for table, named_floats in ((converters, False), (named_float_converters, True)):
            convert = _converter(hint, codecs, named_floats)
            if convert is not None:
                table.append((name, convert))
        if _mentions(hint, float):
            float_names.append(name)
        item = _nested_dataclass(hint)
        if item is not None:
            parts.append(_nested_floats(name, hint, _codec(item, codecs).floats))
    if float_names:
        get_floats = _values_getter(float_names)
        parts.insert(0, lambda objs: itertools.chain.from_iterable(map(get_floats, objs)))
    codecs[cls] = _Codec(
        tuple(converters),
        tuple(named_float_converters),
        lambda objs: itertools.chain.from_iterable(part(objs) for part in parts),
    )
    return codecs[cls]


def _nested_floats(
    name: str, hint: Any, item_floats: Callable[[Sequence[Any]], Iterable[Any]]
) -> Callable[[Sequence[Any]], Iterable[Any]]:
    get = operator.attrgetter(name)
    if typing.get_origin(hint) is tuple:  # tuple[Item, ...]
        return lambda objs: item_floats(list(itertools.chain.from_iterable(map(get, objs))))
    return lambda objs: item_floats([v for v in map(get, objs) if v is not None])


def _converter(
    hint: Any, codecs: dict[type, _Codec], named_floats: bool
) -> Callable[[Any], Any] | None:
    """How to turn the JSON value of a field typed ``hint`` back into the field's value (None:
    it is that value already).

    :param named_floats: whether a float field may hold "NaN", "Infinity" or "-Infinity"
    """
    if hint is float:
        return _named_float if named_floats else None
    if dataclasses.is_dataclass(hint):
        cls = hint
        return lambda value: _decode(cls, value, named_floats)
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is tuple:
        item = (_converter(args[0], codecs, named_floats)
                if len(args) == 2 and args[1] is Ellipsis else None)
        if item is None:
            return tuple
        return lambda value: tuple(item(v) for v in value)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        convert = _converter(inner[0], codecs, named_floats) if len(inner) == 1 else None
        if convert is None:
            return None
        return lambda value: None if value is None else convert(value)
    return None


#: How JSON text names the floats it has no number for (protobuf's JSON mapping).
_FLOAT_NAMES = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _named_float(value: Any) -> Any:
    """The value of a float field from its JSON value, which may name a non-finite float."""
    if type(value) is not str:
        return value
    if value not in _FLOAT_NAMES:
        raise ValueError(f"{value!r} is not a number (expected one, or {', '.join(_FLOAT_NAMES)})")
    return _FLOAT_NAMES[value]


def _float_name(value: float) -> str:
    """The JSON name of the non-finite float ``value``."""
    return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")


def _mentions(hint: Any, leaf: type) -> bool:
    return hint is leaf or any(_mentions(a, leaf) for a in typing.get_args(hint))


def _nested_dataclass(hint: Any) -> type | None:
    """The dataclass a field holds (``X``, ``X | None`` or ``tuple[X, ...]``), if any."""
    if dataclasses.is_dataclass(hint):
        return hint
    for arg in typing.get_args(hint):
        found = _nested_dataclass(arg) if arg is not Ellipsis else None
        if found is not None:
            return found
    return None


_CODECS: dict[type, _Codec] = {}
for _payload_class in set(PAYLOAD_TYPES.values()):
    _codec(_payload_class, _CODECS)


_ENCODER = msgspec.json.Encoder()


def _may_have_non_finite(cls: type, payloads: Sequence[Any]) -> bool:
    """False when no float anywhere in ``payloads`` (all of class ``cls``) is NaN or infinite.

    Sums the floats in C instead of testing each: the sum is finite unless a term is NaN or
    infinite, or finite terms overflow (a false alarm: ``_has_non_finite`` then decides).
    """
    total = sum(filter(None, _CODECS[cls].floats(payloads)))  # filter(None) drops None and 0.0
    return total - total != 0.0  # NaN - NaN and inf - inf are NaN


def _has_non_finite(payload: Any) -> bool:
    """True when a float anywhere in ``payload`` is NaN or infinite (tested one by one)."""
    return not all(map(math.isfinite, filter(None, _CODECS[type(payload)].floats([payload]))))


def with_float_names(value: Any) -> Any:
    """``value`` (``msgspec.to_builtins`` data: dicts, tuples, scalars) with its non-finite
    floats named ("NaN", "Infinity", "-Infinity": protobuf's JSON mapping), for strict JSON."""
    if type(value) is float:
        return value if math.isfinite(value) else _float_name(value)
    if type(value) is dict:
        return {key: with_float_names(item) for key, item in value.items()}
    if type(value) is tuple:
        return [with_float_names(item) for item in value]
    return value


def encode_payloads(payloads: Sequence[Any]) -> list[str]:
    """Serialise registered payload dataclasses to compact JSON text (NaN and infinities as
    "NaN", "Infinity", "-Infinity").

    Same output as ``encode_payload`` on each; in bulk, one encoder call and one NaN screen per
    class.

    Raises:
        TypeError: a payload is not an instance of a class in ``PAYLOAD_TYPES``.
    """
    classes = set(map(type, payloads))
    if not classes <= _CODECS.keys():
        names = sorted(c.__name__ for c in classes - _CODECS.keys())
        raise TypeError(f"not registered payload types: {', '.join(names)}")
    texts = _ENCODER.encode_lines(payloads).decode().split("\n")  # JSON text holds no raw \n
    texts.pop()  # after the last line's \n
    for cls, group in _by_class(payloads, classes).items():
        if _may_have_non_finite(cls, group):
            for i, payload in enumerate(payloads):
                if type(payload) is cls and _has_non_finite(payload):
                    named = with_float_names(msgspec.to_builtins(payload))
                    texts[i] = _ENCODER.encode(named).decode()
    return texts


def _by_class(payloads: Sequence[Any], classes: set[type]) -> Mapping[type, Sequence[Any]]:
    """``payloads`` grouped by class, in one pass (a batch of a real run holds ~13 classes)."""
    if len(classes) == 1:
        return {next(iter(classes)): payloads}
    groups: dict[type, list[Any]] = {cls: [] for cls in classes}
    appends = {cls: group.append for cls, group in groups.items()}
    for payload in payloads:
        appends[type(payload)](payload)
    return groups


def encode_payload(payload: Any) -> str:
    """Serialise one registered payload dataclass to compact JSON text (non-finite floats named).

    Raises:
        TypeError: ``payload`` is not an instance of a class in ``PAYLOAD_TYPES``.
    """
    return encode_payloads([payload])[0]


def _decode(cls: type, obj: dict[str, Any], named_floats: bool) -> Any:
    codec = _CODECS[cls]
    for name, convert in codec.named_float_converters if named_floats else codec.converters:
        if name in obj:
            obj[name] = convert(obj[name])
    return cls(**obj)


def decode_payload(event_type: TelemetryEventType, text: str) -> Any:
    """Rebuild the payload of an ``event_type`` event from the JSON text ``encode_payload`` made
    (or an older esper made, with bare NaN / Infinity tokens).

    Raises:
        KeyError: ``event_type`` has no payload class.
        TypeError, ValueError: the text does not fit the payload class.
    """
    try:
        obj = msgspec.json.decode(text)
    except msgspec.DecodeError:  # bare NaN / Infinity tokens: only the stdlib reads them
        obj = json.loads(text)
    # a substring test costs ~0.1 us, converting every float field ~0.1 us each ("-Infinity"
    # ends like "Infinity")
    named_floats = '"NaN"' in text or 'Infinity"' in text
    return _decode(PAYLOAD_TYPES[event_type], obj, named_floats)


def encode_event(event: TelemetryEvent) -> str:
    """One event as a JSON object (the envelope, with the payload under ``data``), one line."""
    envelope = _ENCODER.encode(
        {
            "run_id": event.run_id,
            "seq": event.seq,
            "ts": event.ts,
            "event_type": event.event_type.value,
            "severity": event.severity.value,
            "batch": event.batch,
            "env_id": event.env_id,
            "epoch": event.epoch,
            "seed_id": event.seed_id,
            "slot_id": event.slot_id,
            "message": event.message,
        }
    ).decode()
    return f'{envelope[:-1]},"data":{encode_payload(event.data)}}}'
