"""Load an experiment: YAML with positions, overrides, validation, defaults, typed spec."""

from __future__ import annotations

from pathlib import Path as FilePath
from typing import Any

from esper.experiment.consistency import consistency_problems
from esper.experiment.overrides import apply_overrides
from esper.experiment.problems import describe, dotted, schema_problems
from esper.experiment.schema import validator, with_defaults
from esper.experiment.spec_builder import build_spec
from esper.experiment.yaml_source import Location, ParsedDocument, parse_yaml
from esper.leyline.config import ExperimentSpec
from esper.leyline.errors import SpecError, SpecProblem


def load(path: str | FilePath, overrides: tuple[str, ...] = ()) -> ExperimentSpec:
    """Load, override, validate and resolve the experiment file at `path`.

    Raises:
        SpecError: with every problem of the file and the overrides, each located.
    """
    source = str(path)
    try:
        text = FilePath(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as error:  # at the line and column of the first bad byte
        before = error.object[:error.start]
        line = before.count(b"\n") + 1
        column = len(before[before.rfind(b"\n") + 1:].decode("utf-8", "replace")) + 1
        raise SpecError([SpecProblem(
            source, line, column, "", f"cannot read the experiment file: byte "
            f"0x{error.object[error.start]:02x} is not UTF-8 (expected UTF-8 text)")]) from None
    except OSError as error:
        reason = error.strerror or str(error)
        raise SpecError([SpecProblem(source, None, None, "",
                                     f"cannot read the experiment file: {reason}")]) from None
    return load_text(text, source, overrides)


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


def spec_from_dict(document: dict[str, Any], overrides: tuple[str, ...] = ()) -> ExperimentSpec:
    """The spec of an experiment given as plain data (for the library and tests).

    Raises:
        SpecError: when the document is invalid.
    """
    where = Location("<dict>")
    parsed = ParsedDocument(dict(document), {(): where}, {})
    return _validated_spec(parsed, apply_overrides(parsed, overrides))


def _validated_spec(parsed: ParsedDocument, problems: list[SpecProblem]) -> ExperimentSpec:
    for error in validator().iter_errors(parsed.data):
        problems.extend(schema_problems(parsed, error))
    if problems:
        raise SpecError(_in_file_order(problems))
    resolved = with_defaults(parsed.data)
    problems = consistency_problems(parsed, resolved)
    if problems:
        raise SpecError(_in_file_order(problems))
    return build_spec(resolved)


def _in_file_order(problems: list[SpecProblem]) -> list[SpecProblem]:
    return sorted(problems, key=lambda p: (p.line is None, p.line or 0, p.column or 0, p.path))
