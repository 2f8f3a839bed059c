"""Load an experiment: YAML with positions, overrides, validation, defaults, typed spec."""

from __future__ import annotations

import copy
import os
import stat
from collections.abc import Mapping
from pathlib import Path as FilePath
from typing import Any

from esper.experiment.blocks import block_problems
from esper.experiment.consistency import consistency_problems
from esper.experiment.overrides import apply_overrides
from esper.experiment.problems import (ADDED_KEYS, MOVED_KEYS, describe, dotted, out_of_range_integers,
                                       schema_problems)
from esper.experiment.schema import experiment_schema, validator, whole_numbers, with_defaults
from esper.experiment.spec_builder import build_spec
from esper.experiment.yaml_source import Location, ParsedDocument, parse_yaml
from esper.leyline.config import ExperimentSpec
from esper.leyline.errors import SpecError, SpecProblem


MAX_BYTES = 256 << 10  # bytes of an experiment file; real ones hold a few thousand, and
# PyYAML reads ~100 KB/s on a busy core: a file at the limit takes seconds, not minutes


def load(path: str | FilePath, overrides: tuple[str, ...] = ()) -> ExperimentSpec:
    """Load, override, validate and resolve the experiment file at `path`.

    Raises:
        SpecError: with every problem of the file and the overrides, each located.
    """
    source = str(path)
    try:
        data = _read_regular_file(path)
    except OSError as error:
        reason = error.strerror or str(error)
        raise SpecError([SpecProblem(source, None, None, "",
                                     f"cannot read the experiment file: {reason}")]) from None
    if len(data) > MAX_BYTES:  # at the first byte past the limit
        line, column = _position(data, MAX_BYTES)
        raise SpecError([SpecProblem(
            source, line, column, "", f"the experiment file is larger than {MAX_BYTES:,} bytes "
            "(expected a few thousand bytes of YAML)")])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:  # at the line and column of the first bad byte
        line, column = _position(data, error.start)
        raise SpecError([SpecProblem(
            source, line, column, "", f"cannot read the experiment file: byte "
            f"0x{data[error.start]:02x} is not UTF-8 (expected UTF-8 text)")]) from None
    return load_text(text, source, overrides)


_NOT_REGULAR = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                (stat.S_ISSOCK, "a socket"))


def _read_regular_file(path: str | FilePath) -> bytes:
    """The first `MAX_BYTES` + 1 bytes of the regular file at `path`.

    Raises:
        OSError: the file cannot be read, or is not a regular file (issue 20: reading a FIFO
            blocked forever). It is checked before opening, as opening a device can act on it,
            and again on the open file, which never blocks, in case it was replaced meanwhile.
    """
    _require_regular(os.stat(path).st_mode)
    with open(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as file:
        _require_regular(os.fstat(file.fileno()).st_mode)
        return file.read(MAX_BYTES + 1)


def _require_regular(mode: int) -> None:
    for test, kind in _NOT_REGULAR:
        if test(mode):
            raise OSError(f"it is {kind}, not a regular file")


def _position(data: bytes, offset: int) -> tuple[int, int]:
    """The 1-based line and column (in characters) of byte `offset` of UTF-8 `data`."""
    before = data[:offset]
    start = before.rfind(b"\n") + 1
    return before.count(b"\n") + 1, len(before[start:].decode("utf-8", "replace")) + 1


def load_text(text: str, source: str, overrides: tuple[str, ...] = ()) -> ExperimentSpec:
    """Like `load`, for YAML text that came from `source`."""
    parsed, yaml_problems = parse_yaml(text, source)
    problems = [SpecProblem(p.location.source, p.location.line, p.location.column,
                            dotted(p.path), p.message) for p in yaml_problems]
    if parsed is None:
        if not problems:
            problems.append(SpecProblem(source, 1, 1, "", "the file is empty (expected a mapping "
                                        "of experiment keys, with at least 'name')"))
        raise SpecError(problems)
    if not isinstance(parsed.data, dict):
        if parsed.is_rejected(()):
            raise SpecError(problems)
        location = parsed.locate(())
        raise SpecError(problems + [SpecProblem(
            source, location.line, location.column, "",
            f"expected a mapping of experiment keys at the top level, got {describe(parsed.data)}")])
    problems += apply_overrides(parsed, overrides)
    return _validated_spec(parsed, problems)


def spec_from_dict(document: dict[str, Any], overrides: tuple[str, ...] = (),
                   source: str = "<dict>") -> ExperimentSpec:
    """The spec of an experiment given as plain data (for the library and tests); `source`
    names where it came from in messages.

    Raises:
        SpecError: when the document is invalid.
    """
    where = Location(source)
    parsed = ParsedDocument(dict(document), {(): where}, {})
    return _validated_spec(parsed, apply_overrides(parsed, overrides))


def stored_spec(config: Mapping[str, Any], overrides: tuple[str, ...] = (),
                source: str = "<stored config>") -> ExperimentSpec:
    """The spec of a resolved config a registry stored (a run's, a sweep's), written by this
    esper or an older one: a key that has moved since (`MOVED_KEYS`) is read at its new place,
    and a key added since (`ADDED_KEYS`) takes the behaviour the run had without it. Experiment
    files get no such help: they are told where a key went, and take every default."""
    document = copy.deepcopy(dict(config))
    for old, new in MOVED_KEYS.items():
        *parents, key = old.split(".")
        section = _section(document, parents)
        if section is None or key not in section:
            continue
        value = section.pop(key)
        *new_parents, new_key = new.split(".")
        target = document
        for part in new_parents:
            target = target.setdefault(part, {})
        target.setdefault(new_key, value)
    for added, before in ADDED_KEYS.items():
        *parents, key = added.split(".")
        section = _section(document, parents)
        if section is not None:
            section.setdefault(key, before)
    return spec_from_dict(document, overrides, source)


def _section(document: dict[str, Any], path: list[str]) -> dict[str, Any] | None:
    """The mapping at `path` in `document`, or None where there is none."""
    section: Any = document
    for part in path:
        section = section.get(part) if isinstance(section, dict) else None
    return section if isinstance(section, dict) else None


def _validated_spec(parsed: ParsedDocument, problems: list[SpecProblem]) -> ExperimentSpec:
    for error in validator().iter_errors(parsed.data):
        problems.extend(schema_problems(parsed, error))
    problems += block_problems(parsed)
    if not problems:
        parsed.data = whole_numbers(parsed.data, experiment_schema())  # 2.0 -> 2 where an int
        problems = out_of_range_integers(parsed)
    if problems:
        raise SpecError(_in_file_order(problems))
    resolved = with_defaults(parsed.data)
    problems = consistency_problems(parsed, resolved)
    if problems:
        raise SpecError(_in_file_order(problems))
    return build_spec(resolved)


def _in_file_order(problems: list[SpecProblem]) -> list[SpecProblem]:
    return sorted(problems, key=lambda p: (p.line is None, p.line or 0, p.column or 0, p.path))
