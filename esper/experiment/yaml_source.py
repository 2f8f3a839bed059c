"""Parse YAML safely into plain data, keeping where every key and value came from."""

from __future__ import annotations

from dataclasses import dataclass
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

    def locate(self, path: Path, *, key: bool = False) -> Location:
        """The location of `path` (its key when `key`), else of its closest located ancestor."""
        table = self.key_locations if key else self.value_locations
        for end in range(len(path), -1, -1):
            found = table.get(path[:end]) or self.value_locations.get(path[:end])
            if found is not None:
                return found
        raise LookupError(f"no location recorded for {path!r}")


@dataclass(frozen=True)
class YamlProblem:
    """A located problem found while reading YAML (syntax, duplicate key, tag)."""

    location: Location
    path: Path
    message: str


def _location(source: str, mark: yaml.Mark | None) -> Location:
    if mark is None:
        return Location(source)
    return Location(source, mark.line + 1, mark.column + 1)


def parse_yaml(text: str, source: str) -> tuple[ParsedDocument | None, list[YamlProblem]]:
    """Parse `text` (from `source`) into plain data with locations.

    Returns the document (None when the text is not YAML at all, or empty) and every
    problem found: a syntax error, duplicate keys, tags that would build objects.
    """
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        return None, [_syntax_problem(error, source)]
    if root is None:
        return None, []
    reader = _NodeReader(source)
    data = reader.read(root, ())
    return ParsedDocument(data, reader.value_locations, reader.key_locations), reader.problems


def _short_tag(tag: str) -> str:
    return tag.replace("tag:yaml.org,2002:", "!!")


def _syntax_problem(error: yaml.MarkedYAMLError, source: str) -> YamlProblem:
    message = f"invalid YAML: {error.problem}" if error.problem else "invalid YAML"
    if error.context:
        message += f" ({error.context})"
    if error.problem and "'\\t'" in error.problem:
        message += "; tabs are not allowed for indentation in YAML, use spaces"
    return YamlProblem(_location(source, error.problem_mark or error.context_mark), (), message)


class _NodeReader:
    """Turns a composed YAML node tree into plain data, recording locations and problems."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.value_locations: dict[Path, Location] = {}
        self.key_locations: dict[Path, Location] = {}
        self.problems: list[YamlProblem] = []
        self._scalars = yaml.constructor.SafeConstructor()

    def read(self, node: yaml.Node, path: Path) -> Any:
        self.value_locations[path] = _location(self.source, node.start_mark)
        if node.tag not in _PLAIN_TAGS and node.tag != _TIMESTAMP_TAG:
            self.problems.append(YamlProblem(
                self.value_locations[path], path,
                f"YAML tag {_short_tag(node.tag)!r} is not allowed (expected plain data: "
                "strings, numbers, booleans, null, lists and mappings)",
            ))
            return None
        if isinstance(node, yaml.MappingNode):
            return self._read_mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.read(item, path + (index,)) for index, item in enumerate(node.value)]
        if node.tag == _TIMESTAMP_TAG:
            return node.value  # dates stay strings: experiment files hold no datetimes
        return self._scalars.construct_object(node)

    def _read_mapping(self, node: yaml.MappingNode, path: Path) -> dict[str, Any]:
        result: dict[str, Any] = {}
        first_seen: dict[str, Location] = {}
        for key_node, value_node in node.value:
            key_location = _location(self.source, key_node.start_mark)
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag not in _PLAIN_TAGS:
                self.problems.append(YamlProblem(
                    key_location, path, "mapping keys must be plain strings"))
                continue
            key = str(self._scalars.construct_object(key_node))
            if key in first_seen:
                self.problems.append(YamlProblem(
                    key_location, path + (key,),
                    f"duplicate key {key!r} (first defined at line {first_seen[key].line})",
                ))
                continue
            first_seen[key] = key_location
            self.key_locations[path + (key,)] = key_location
            result[key] = self.read(value_node, path + (key,))
        return result
