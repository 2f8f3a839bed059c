"""Checks of the `sweep:` and `regression:` blocks that a JSON Schema cannot express: what
`esper sweep` and `esper regress` need of them, found by every command that loads the file
(`esper validate` included), all at once and located like the schema's problems."""

from __future__ import annotations

import math
from typing import Any

from esper.experiment.overrides import unknown_key
from esper.experiment.problems import describe, problem_at, schema_problems
from esper.experiment.schema import schema_at, schema_types, value_validator, with_defaults
from esper.experiment.yaml_source import ParsedDocument, Path
from esper.leyline.config import RULE_CHECKS
from esper.leyline.errors import SpecProblem


def block_problems(document: ParsedDocument) -> list[SpecProblem]:
    """Problems of the sweep and regression blocks of `document`, whether or not the rest of
    it is valid: each check looks at the parts of a block the schema accepts (the schema's own
    problems are reported by the loader), so every problem is found at once."""
    data = document.data
    return _sweep_problems(document, data.get("sweep")) + _regression_problems(
        document, data.get("regression"))


def _valid(value: Any, *keys: str) -> bool:
    """Whether `value` is valid for the schema of the dotted config key `keys`."""
    schema = schema_at(list(keys))
    return schema is not None and value_validator(schema).is_valid(value)


def _sweep_problems(document: ParsedDocument, sweep: Any) -> list[SpecProblem]:
    if not isinstance(sweep, dict):
        return []  # none, or the schema's problem
    method = sweep.get("method", "grid") if _valid(sweep.get("method", "grid"), "sweep",
                                                   "method") else None
    parameters = sweep.get("parameters", {})
    valid = {key: parameter
             for key, parameter in (parameters.items() if isinstance(parameters, dict) else ())
             if _valid({key: parameter}, "sweep", "parameters")}
    problems = [problem for key, written in valid.items()
                for problem in _parameter_problems(document, method, key, written)]
    max_runs = sweep.get("max_runs")
    if not _valid(max_runs, "sweep", "max_runs"):
        return problems
    if method == "random" and max_runs is None:
        problems.append(problem_at(document, ("sweep", "method"), "method random needs "
                                   "sweep.max_runs (expected the number of draws)"))
    lists = [parameter.get("values") for parameter in valid.values()]
    if method == "grid" and max_runs is not None and None not in lists:
        points = math.prod(len(values) for values in lists)
        if points > max_runs:
            problems.append(problem_at(
                document, ("sweep", "max_runs"), f"the grid has {points} points, over max_runs "
                f"{max_runs} (expected fewer values, a higher max_runs, or method: random)"))
    return problems


def _parameter_problems(document: ParsedDocument, method: str | None, key: str,
                        written: dict[str, Any]) -> list[SpecProblem]:
    """Problems of the schema-valid parameter `key` of the sweep, as `written`: a key a sweep
    may set, with values (or a range, for method random) valid for that key; `method`: the
    sweep's, None when it is invalid."""
    at: Path = ("sweep", "parameters", key)
    keys = key.split(".")
    if keys[0] == "sweep":
        return [problem_at(document, at, "a sweep cannot set its own sweep block", key=True)]
    if key == "training.replicates":  # every trial runs the experiment's replicates
        return [problem_at(document, at, "the replicates are the same for every trial (expected "
                           "training.replicates: N child runs per trial)", key=True)]
    unknown = unknown_key(keys)
    if unknown is not None:
        return [problem_at(document, at, unknown[1], key=True)]
    schema = schema_at(keys)
    assert schema is not None  # the key is known
    parameter = with_defaults(written, schema_at(["sweep", "parameters", key]))
    if parameter["values"] is not None:
        if parameter["min"] is not None or parameter["max"] is not None:
            return [problem_at(document, at, "give either values or min/max, not both", key=True)]
        return [problem for index, value in enumerate(parameter["values"])
                for problem in _value_problems(document, at + ("values", index), value, schema)]
    if parameter["min"] is None or parameter["max"] is None:
        given = next(name for name in ("values", "min", "max")
                     if name in written and written[name] is None)
        return [problem_at(document, at + (given,), f"{given} is null (expected a list of "
                           "values, or both min and max)")]
    if method != "random":
        return [] if method is None else [problem_at(
            document, at, "a min..max range needs sweep.method: random (a grid tries values "
            "lists only)", key=True)]
    return _range_problems(document, at, parameter, schema)


def _range_problems(document: ParsedDocument, at: Path, parameter: dict[str, Any],
                    schema: dict[str, Any]) -> list[SpecProblem]:
    low, high, distribution = parameter["min"], parameter["max"], parameter["distribution"]
    types = schema_types(schema, None if "enum" in schema else "number")  # no type: any value
    whole = distribution == "int_uniform"
    if "integer" in types and "number" not in types and not whole:
        return [problem_at(document, at + ("distribution",), f"{at[-1]} takes integers, but "
                           f"{distribution} draws fractional numbers (expected distribution: "
                           "int_uniform)")]
    if "integer" not in types and "number" not in types:
        return [problem_at(document, at, f"{at[-1]} takes no numbers, but a min..max range "
                           "draws numbers (expected a values list)", key=True)]
    if low > high:
        return [problem_at(document, at + ("min",), f"min {describe(low)} is above max "
                           f"{describe(high)} (expected min <= max)")]
    if distribution == "log_uniform" and low <= 0:
        return [problem_at(document, at + ("min",),
                           f"log_uniform needs min > 0, got {describe(low)}")]
    if whole:
        fractional = [(end, value) for end, value in (("min", low), ("max", high))
                      if not float(value).is_integer()]
        if fractional:
            end, value = fractional[0]
            return [problem_at(document, at + (end,),
                               f"int_uniform needs whole min and max, got {describe(value)}")]
    # the ends are drawn too: each must be a valid value of the key
    return [problem for end, value in (("min", low), ("max", high))
            for problem in _value_problems(document, at + (end,),
                                           int(value) if whole else value, schema)]


def _value_problems(document: ParsedDocument, path: Path, value: Any,
                    schema: dict[str, Any]) -> list[SpecProblem]:
    """Problems of `value`, at `path` of the sweep, as a value of the key whose schema is
    `schema` (as --set KEY=VALUE would find them in a trial)."""
    return [problem for error in value_validator(schema).iter_errors(value)
            for problem in schema_problems(document, error, path)]


def _regression_problems(document: ParsedDocument, regression: Any) -> list[SpecProblem]:
    metrics = regression.get("metrics") if isinstance(regression, dict) else None
    if not isinstance(metrics, dict):
        return []  # none, or the schema's problem
    return [problem_at(document, ("regression", "metrics", name),
                       "the rule checks nothing (expected a threshold, a min_absolute_change / "
                       "min_relative_change or an absolute_tolerance / relative_tolerance)",
                       key=True)
            for name, rule in metrics.items()
            if _valid({name: rule}, "regression", "metrics")
            and all(rule.get(check) is None for check in RULE_CHECKS)]
