"""Parse YAML safely into plain data, keeping where every key and value came from."""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

Path = tuple[str | int, ...]

_PLAIN_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:map",
    "tag:yaml.org,2002:seq",
}
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_COLLECTION_TAGS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}


@dataclass(frozen=True)
class Location:
    """Where a node came from: a file position, or an override with no position."""

    source: str
    line: int | None = None  # 1-based
    column: int | None = None  # 1-based


@dataclass
class ParsedDocument:
    """Plain data plus the location of every value and every mapping key, by path."""

    data: Any
    value_locations: dict[Path, Location]
    key_locations: dict[Path, Location]
    rejected: set[Path] = field(default_factory=set)  # values dropped (None) for a YAML problem

    def locate(self, path: Path, *, key: bool = False) -> Location:
        """The location of `path` (its key when `key`), else of its closest located ancestor."""
        table = self.key_locations if key else self.value_locations
        for end in range(len(path), -1, -1):
            found = table.get(path[:end]) or self.value_locations.get(path[:end])
            if found is not None:
                return found
        raise LookupError(f"no location recorded for {path!r}")

    def is_rejected(self, path: Path) -> bool:
        """Whether `path` lies in a value dropped for a YAML problem (already reported)."""
        return any(path[: len(rejected)] == rejected for rejected in self.rejected)


@dataclass(frozen=True)
class YamlProblem:
    """A located problem found while reading YAML (syntax, duplicate key, tag)."""

    location: Location
    path: Path
    message: str


MAX_DEPTH = 64  # levels of nested values (the document is level 1); real files nest ~4
# characters of an integer: 64 binary digits with 0b and a sign fit, and Python converts at
# most 4,300 digits (issue 20: a 5,000-digit seed was a ValueError). Ranges are the schema's.
MAX_INT_CHARS = 70
_TOO_DEEP = (f"values are nested more than {MAX_DEPTH} levels deep (expected an experiment "
             "file's few levels of mappings and lists)")


class _TooDeep(Exception):
    """The text nests values more than `MAX_DEPTH` deep (the composer would overflow Python's
    stack, at ~3 frames a level)."""

    def __init__(self, mark: yaml.Mark) -> None:
        super().__init__(_TOO_DEEP)
        self.mark = mark


class _Loader(yaml.SafeLoader):
    """The safe loader, reading scalars by the YAML 1.2 core schema, as JSON does: `3e-4` and
    `1e3` are floats (YAML 1.1 would make them strings, and `lr: 3e-4` would be "not a
    number"), `010`, `1:30` and `0b11` are strings (YAML 1.1 would read 8, 90 and 3: `seed: 010`
    ran seed 8), and only true/false (True, TRUE, False, FALSE) are booleans: yes, no, on, off,
    y and n are strings (YAML 1.1 read `description: off` as false). It composes at most
    `MAX_DEPTH` levels of nodes (issue 20: 10,000 were a RecursionError)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0  # nodes being composed, the root's included

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        if self._depth == MAX_DEPTH:
            raise _TooDeep(self.peek_event().start_mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


_INT_TAG, _FLOAT_TAG = "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"
_BOOL_TAG = "tag:yaml.org,2002:bool"
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers
            if tag not in (_INT_TAG, _FLOAT_TAG, _BOOL_TAG)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
_Loader.add_implicit_resolver(
    _INT_TAG, re.compile(r"^(?:[-+]?(?:0|[1-9][0-9_]*)|0x[0-9a-fA-F_]+)$"), list("-+0123456789"))
_Loader.add_implicit_resolver(
    _FLOAT_TAG,
    re.compile(r"""^(?:[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                   |[-+]?\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?
                   |[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+
                   |[-+]?\.(?:inf|Inf|INF)
                   |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."),
)


def _location(source: str, mark: yaml.Mark | None) -> Location:
    if mark is None:
        return Location(source)
    return Location(source, mark.line + 1, mark.column + 1)


def parse_yaml(text: str, source: str, *, lines: bool = True
               ) -> tuple[ParsedDocument | None, list[YamlProblem]]:
    """Parse `text` (from `source`) into plain data with locations.

    :param lines: whether messages may name lines of `text` (not for a one-line --set value)

    Returns the document (None when the text is not YAML at all, or empty) and every
    problem found: a syntax error, duplicate keys, tags that would build objects.
    """
    try:
        root = yaml.compose(text, Loader=_Loader)
    except _TooDeep as error:
        return None, [YamlProblem(_location(source, error.mark), (), _TOO_DEEP)]
    except yaml.MarkedYAMLError as error:
        return None, [_syntax_problem(error, source)]
    except yaml.reader.ReaderError as error:  # a control character: unmarked, so placed here
        line = text.count("\n", 0, error.position) + 1
        column = error.position - text.rfind("\n", 0, error.position)
        code = error.character
        escape = (f"\\x{code:02x}" if code <= 0xFF else
                  f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        message = (f"invalid YAML: character #x{code:04x} is not allowed (expected printable "
                   f"text; in a double-quoted string write it as the escape \"{escape}\")")
        return None, [YamlProblem(Location(source, line, column), (), message)]
    if root is None:
        return None, []
    reader = _NodeReader(source, lines)
    data = reader.read(root, ())
    document = ParsedDocument(data, reader.value_locations, reader.key_locations, reader.rejected)
    return document, reader.problems


def abridged(text: str, keep: int = 40) -> str:
    """`text` quoted, its middle left out when it is long (a 5,000-digit integer)."""
    if len(text) <= keep:
        return repr(text)
    return f"{text[:keep // 2]!r}...{text[-(keep // 2):]!r} ({len(text):,} characters)"


def _short_tag(tag: str) -> str:
    return tag.replace("tag:yaml.org,2002:", "!!")


def _syntax_problem(error: yaml.MarkedYAMLError, source: str) -> YamlProblem:
    message = f"invalid YAML: {error.problem}" if error.problem else "invalid YAML"
    if error.context:
        start, end = error.context_mark, error.problem_mark
        if error.context.startswith("while ") and start and end and start.line != end.line:
            # e.g. an unclosed bracket or quote: the error is at the end, the cause at its start
            message += f" ({error.context} started at line {start.line + 1}, column {start.column + 1})"
        else:
            message += f" ({error.context})"
    if error.problem and "'\\t'" in error.problem:
        message += "; tabs are not allowed for indentation in YAML, use spaces"
    return YamlProblem(_location(source, error.problem_mark or error.context_mark), (), message)


class _ScalarConstructor(yaml.constructor.SafeConstructor):
    """Builds scalars; `!!bool yes` is no boolean either (YAML 1.2 core: true and false only)."""

    bool_values = {"true": True, "false": False}


MAX_VALUES = 100_000  # values in one experiment file, aliases expanded; real ones hold ~200


class _NodeReader:
    """Turns a composed YAML node tree into plain data, recording locations and problems."""

    def __init__(self, source: str, lines: bool = True) -> None:
        self.source = source
        self.lines = lines
        self.value_locations: dict[Path, Location] = {}
        self.key_locations: dict[Path, Location] = {}
        self.problems: list[YamlProblem] = []
        self.rejected: set[Path] = set()
        self._scalars = _ScalarConstructor()
        self._open: set[int] = set()  # ids of the collections being read, to catch `&a [*a]`
        self._values = 0  # values read so far, each use of an alias counted again

    def read(self, node: yaml.Node, path: Path) -> Any:
        self._values += 1
        if self._values > MAX_VALUES:
            if self._values == MAX_VALUES + 1:  # reported once, where the limit was crossed
                self.problems.append(YamlProblem(
                    _location(self.source, node.start_mark), path[:1],
                    f"the document holds more than {MAX_VALUES:,} values once its aliases "
                    "are expanded (an alias bomb?); write the values out"))
                self.rejected.add(path[:1])  # the whole top-level value is dropped
            return None
        self.value_locations[path] = _location(self.source, node.start_mark)
        if len(path) == MAX_DEPTH:  # deeper than the text: aliases nested in aliases
            return self._too_deep(path)
        if node.tag not in _PLAIN_TAGS and node.tag != _TIMESTAMP_TAG:
            return self._reject(path, f"YAML tag {_short_tag(node.tag)!r} is not allowed (expected "
                                "plain data: strings, numbers, booleans, null, lists and mappings)")
        if id(node) in self._open:
            return self._reject(path, "recursive YAML alias (a value cannot contain itself)")
        if isinstance(node, yaml.CollectionNode):
            self._open.add(id(node))
            if isinstance(node, yaml.MappingNode):
                value: Any = self._read_mapping(node, path)
            else:
                value = [self.read(item, path + (index,)) for index, item in enumerate(node.value)]
            self._open.discard(id(node))
            return value
        if node.tag == _TIMESTAMP_TAG:
            return node.value  # dates stay strings: experiment files hold no datetimes
        if node.tag == _INT_TAG and len(node.value) > MAX_INT_CHARS:
            return self._reject(path, f"integer {abridged(node.value)} is too large (expected at "
                                f"most {MAX_INT_CHARS} characters)")
        if node.tag not in _COLLECTION_TAGS:  # `!!map x` is no mapping
            with contextlib.suppress(ValueError, KeyError):  # `!!int abc`, `!!bool maybe`
                return self._scalars.construct_object(node)
        return self._reject(path, f"{abridged(node.value)} is not a valid "
                            f"{_short_tag(node.tag)} (expected what the tag names)")

    def _too_deep(self, path: Path) -> None:
        """Drop the value at `path`, nested too deep; reported once, where first found."""
        if not any(problem.message == _TOO_DEEP for problem in self.problems):
            self.problems.append(YamlProblem(self.value_locations[path], path[:1], _TOO_DEEP))
        self.rejected.add(path)

    def _reject(self, path: Path, message: str) -> None:
        """Report the value at `path` and drop it (read as None; its schema errors are muted)."""
        self.problems.append(YamlProblem(self.value_locations[path], path, message))
        self.rejected.add(path)

    def _read_mapping(self, node: yaml.MappingNode, path: Path) -> dict[str, Any]:
        result: dict[str, Any] = {}
        first_seen: dict[str, Location] = {}
        for key_node, value_node in node.value:
            key_location = _location(self.source, key_node.start_mark)
            if key_node.tag == "tag:yaml.org,2002:merge":
                self.problems.append(YamlProblem(
                    key_location, path, "YAML merge keys ('<<') are not supported; write the keys out"))
                continue
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag not in _PLAIN_TAGS:
                self.problems.append(YamlProblem(
                    key_location, path, "mapping keys must be plain strings"))
                continue
            key = key_node.value  # as written: `on:` and `1.0:` are the keys 'on' and '1.0'
            if key in first_seen:
                self.problems.append(YamlProblem(
                    key_location, path + (key,),
                    f"duplicate key {abridged(key)} " + (f"(first defined at line {first_seen[key].line})"
                                                 if self.lines else "(expected each key once)"),
                ))
                continue
            first_seen[key] = key_location
            self.key_locations[path + (key,)] = key_location
            value = self.read(value_node, path + (key,))
            result[key] = None if path + (key,) in self.rejected else value
        return result
