"""The trials of a sweep: its search space expanded into validated experiment specs.

Every trial is the sweep's experiment with some dotted keys set, exactly like ``--set`` (the
value goes through the normal loader, so a bad key or value is a clear error before anything
runs). ``training.replicates: N`` makes N child runs of each trial, with seeds seed..seed+N-1.

- method ``grid``: every combination of the ``values`` lists (keys in sorted order);
- method ``random``: ``max_runs`` draws from a generator seeded by the experiment's seed (the
  same plan every time): a ``values`` list is drawn uniformly, a ``min..max`` range
  ``uniform``, ``log_uniform`` or ``int_uniform`` (both ends included).
"""

from __future__ import annotations

import itertools
import json
import math
import random
from dataclasses import dataclass
from typing import Any

from esper.experiment import spec_from_dict, spec_to_dict
from esper.experiment.yaml_source import parse_yaml
from esper.leyline.config import ExperimentSpec, SweepConfig, SweepParameter
from esper.leyline.errors import SpecError
from esper.sweep.errors import SweepError

_GRID_EXAMPLE = "e.g. --grid host.lr=0.01,0.1"


@dataclass(frozen=True)
class Trial:
    """One child run of a sweep: a point of the search space, one replicate of it."""

    index: int  # the point, 0-based, in plan order
    replicate: int  # 0 .. training.replicates - 1
    params: dict[str, Any]  # dotted key -> the value this trial sets
    spec: ExperimentSpec  # the experiment it runs (no sweep block, one replicate)
    label: str  # t<index>, t<index>-r<replicate> when the sweep has replicates


def with_grid(spec: ExperimentSpec, grid: tuple[str, ...]) -> ExperimentSpec:
    """`spec` with each ``KEY=V1,V2,...`` of `grid` added to (or replacing) its sweep's values.

    A spec without a ``sweep:`` block gets one with the schema's defaults. The values are read
    as YAML, like ``--set`` (``0.1,1e-3``, ``true,false``, ``[r0c0],[r0c0,r0c1]``).

    Raises:
        SweepError: an item is not ``KEY=V1,V2,...``, or its values are not YAML.
        SpecError: the sweep is invalid with these values (a key or a value, as in a file).
    """
    if not grid:
        return spec
    document = spec_to_dict(spec)
    sweep = document["sweep"] or {}
    parameters = sweep.setdefault("parameters", {})
    for item in grid:
        key, equals, text = item.partition("=")
        if not equals or not key.strip() or not text.strip():
            raise SweepError(f"--grid {item}: expected KEY.PATH=V1,V2,... ({_GRID_EXAMPLE})")
        # read as experiment files are (YAML 1.2 numbers: 1e-3 is a float, 010 is not 8)
        parsed, problems = parse_yaml(f"[{text}]", f"--grid {item}", lines=False)
        if problems or parsed is None:
            reason = problems[0].message if problems else "no values"
            raise SweepError(f"--grid {item}: the values are not YAML ({reason}); "
                             f"expected comma-separated values ({_GRID_EXAMPLE})")
        parameters[key.strip()] = {"values": parsed.data}
    document["sweep"] = sweep
    return spec_from_dict(document, source=f"--grid {' '.join(grid)}")


def plan_trials(spec: ExperimentSpec) -> list[Trial]:
    """Every trial of the sweep of `spec`, validated, in plan order (points x replicates).

    The sweep block itself was checked when `spec` was loaded (`esper.experiment.blocks`:
    each parameter's key, values and range, max_runs, the metric).

    Raises:
        SweepError: no sweep, no parameters, or a trial that is not a valid experiment (its
            keys together: the message names the trial and its problems).
    """
    sweep = spec.sweep
    if sweep is None:
        raise SweepError(f"experiment '{spec.name}' has no sweep: block; add one, or give the "
                         f"values to try with --grid KEY=V1,V2 ({_GRID_EXAMPLE})")
    if not sweep.parameters:
        raise SweepError("sweep.parameters is empty: expected at least one dotted config key "
                         f"with values or a range ({_GRID_EXAMPLE})")
    base = spec_to_dict(spec)
    base["sweep"] = None
    replicates = spec.training.replicates
    return [_trial(base, index, replicate, point, replicates)
            for index, point in enumerate(search_points(sweep, spec.seed))
            for replicate in range(replicates)]


def search_points(sweep: SweepConfig, seed: int) -> list[dict[str, Any]]:
    """The points of the search space: dotted key -> value (see the module docstring).

    Keys are taken in sorted order, so the plan does not depend on how the block was written
    or stored (a resumed sweep re-plans from its run's canonical config).
    """
    keys = sorted(sweep.parameters)
    if sweep.method == "grid":
        grid = itertools.product(*(sweep.parameters[k].values for k in keys))
        return [dict(zip(keys, values)) for values in grid]
    assert sweep.max_runs is not None  # the loader requires it of method random
    rng = random.Random(seed)
    return [{key: _draw(rng, sweep.parameters[key]) for key in keys}
            for _ in range(sweep.max_runs)]


def _draw(rng: random.Random, parameter: SweepParameter) -> Any:
    if parameter.values is not None:
        return rng.choice(parameter.values)
    low, high = parameter.min, parameter.max
    if parameter.distribution == "int_uniform":
        return rng.randint(int(low), int(high))
    if parameter.distribution == "log_uniform":
        return math.exp(rng.uniform(math.log(low), math.log(high)))
    return rng.uniform(low, high)


def _trial(base: dict[str, Any], index: int, replicate: int, point: dict[str, Any],
           replicates: int) -> Trial:
    overrides = [f"{key}={json.dumps(value)}" for key, value in point.items()]
    overrides.append("training.replicates=1")
    try:
        spec = spec_from_dict(base, tuple(overrides))
        if replicate:  # seeds seed..seed+N-1 from the trial's seed (a sweep may set `seed`)
            spec = spec_from_dict(base, (*overrides, f"seed={spec.seed + replicate}"))
    except SpecError as error:
        shown = ", ".join(f"{k}={json.dumps(v)}" for k, v in point.items())
        raise SweepError(f"trial {index} ({shown}) is not a valid experiment:\n"
                         f"{error.message}") from None
    label = f"t{index}-r{replicate}" if replicates > 1 else f"t{index}"
    return Trial(index, replicate, point, spec, label)
