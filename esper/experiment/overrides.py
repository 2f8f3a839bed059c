"""`--set key.path=value` overrides, applied to a parsed experiment document."""

from __future__ import annotations

from esper.experiment.problems import dotted, moved_key, suggestion
from esper.experiment.schema import child_schema, experiment_schema, is_mapping, property_names
from esper.experiment.yaml_source import Location, ParsedDocument, parse_yaml
from esper.leyline.errors import SpecProblem


def apply_overrides(document: ParsedDocument, overrides: tuple[str, ...]) -> list[SpecProblem]:
    """Apply each `key.path=value` to `document` in order; return the problems found.

    The value is read as a YAML scalar or flow collection (`3`, `true`, `[a, b]`,
    `{k: v}`). Every key of the path must exist in the schema.
    """
    problems: list[SpecProblem] = []
    for override in overrides:
        source = f"--set {_shortened(override)}"
        keys_text, equals, value_text = override.partition("=")
        keys = keys_text.strip().split(".")
        if not equals or not all(keys):
            problems.append(SpecProblem(source, None, None, keys_text.strip(),
                                        "expected KEY.PATH=VALUE, e.g. training.envs=4"))
            continue
        unknown = unknown_key(keys)
        if unknown is not None:
            problems.append(SpecProblem(source, None, None, *unknown))
            continue
        parsed, value_problems = parse_yaml(value_text, source, lines=False)
        if value_problems:  # at the key inside the value (training={envs: 2, envs: 3}: .envs)
            problems.extend(SpecProblem(source, None, None, dotted((*keys, *p.path)), p.message)
                            for p in value_problems)
            continue
        _assign(document, tuple(keys), None if parsed is None else parsed.data, Location(source))
    return problems


def _shortened(override: str, keep: int = 100) -> str:
    """`override` as messages name it: its first `keep` characters when it is longer."""
    if len(override) <= keep:
        return override
    return f"{override[:keep]}... ({len(override):,} characters)"


def unknown_key(keys: list[str]) -> tuple[str, str] | None:
    """The first of the dotted `keys` the schema does not have (its dotted path) and why;
    None when the whole path exists (for --set and the keys a sweep sets)."""
    schema = experiment_schema()
    for depth, key in enumerate(keys):
        child = child_schema(schema, key)
        if child is None:
            path = ".".join(keys[: depth + 1])
            moved = moved_key(tuple(keys[: depth + 1]))
            if moved is not None:
                return path, moved
            if not is_mapping(schema):
                return path, f"unknown key {key!r}: {'.'.join(keys[:depth])} is not a mapping"
            allowed = property_names(schema) or []
            return path, (f"unknown key {key!r}{suggestion(key, allowed)}; "
                          f"expected one of: {', '.join(allowed)}")
        schema = child
    return None


def _assign(document: ParsedDocument, path: tuple[str, ...], value: object, where: Location) -> None:
    node = document.data
    for depth, key in enumerate(path[:-1]):
        if not isinstance(node.get(key), dict):
            node[key] = {}
            document.value_locations[path[: depth + 1]] = where
            document.rejected.discard(path[: depth + 1])
        node = node[key]
    node[path[-1]] = value
    for located in [p for p in document.value_locations if p[: len(path)] == path]:
        del document.value_locations[located]
    document.rejected -= {p for p in document.rejected if p[: len(path)] == path}
    document.value_locations[path] = where
    document.key_locations[path] = where
