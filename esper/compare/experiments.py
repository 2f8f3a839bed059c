"""Experiment files as `esper compare` references: run each (all its replicates), then compare
the runs it produced. This makes a head-to-head one command, e.g. the heuristic and the learned
policy on the same seeds::

    esper compare experiments/seed_telemetry_heuristic.yaml experiments/seed_telemetry.yaml
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from esper.compare.refs import check_count, resolve_side
from esper.experiment import load
from esper.leyline.config import ExperimentSpec
from esper.nissa.hub import Sink
from esper.registry import Registry

EXPERIMENT_SUFFIXES = (".yaml", ".yml")


def is_experiment_file(ref: str) -> bool:
    """True when `ref` is an existing YAML file (a run name never ends in .yaml)."""
    return ref.endswith(EXPERIMENT_SUFFIXES) and Path(ref).is_file()


def resolve_references(
    refs: Sequence[str],
    *,
    overrides: Sequence[str] = (),
    registry: str | os.PathLike[str] | None = None,
    mlflow: bool = True,
    progress: Callable[[str], None] = lambda line: None,
    sinks: Callable[[ExperimentSpec], Sequence[Sink]] = lambda spec: (),
) -> list[str]:
    """`refs` ready to compare: each experiment file among them run first (in the order given,
    every file and override checked before any run) and replaced by what it produced, its run
    id or ``group:<id>`` when it has replicates; run and group references beside a file are
    resolved first and given in full (a short prefix could match a run the file records).

    When there is an experiment file, the references are checked before it trains: at least
    two sides, and every run or group reference resolves in ``registry``.

    :param overrides: ``key.path=value`` overrides applied to every experiment file
    :param mlflow: False: the experiment files record to the registry only
    :param progress: told as each experiment file starts and ends
    :param sinks: the extra sinks of each run of an experiment (a progress display)
    Raises:
        CompareError: fewer than two references (only checked here with a file among them).
        RunNotFound, AmbiguousRun, CompareError: a run or group reference resolves to nothing.
        SpecError: an invalid experiment file or override.
    """
    named = [ref for ref in refs if not is_experiment_file(ref)]
    if len(named) == len(refs):
        return list(refs)
    check_count(refs)  # before the first file trains
    resolved: dict[str, str] = {}  # reference as typed -> its full form
    if named:  # a bad run or group reference fails before any experiment file trains
        with Registry.open(registry, create=False) as opened:
            resolved = {ref: resolve_side(opened, ref).ref for ref in named}
    from esper.experiment.replicates import run_replicates  # imports torch: only to run

    specs = {ref: load(ref, overrides) for ref in refs if is_experiment_file(ref)}
    out = []
    for ref in refs:
        if ref not in specs:
            out.append(resolved[ref])  # the runs the files record cannot make it ambiguous
            continue
        spec = specs[ref]
        if not mlflow:
            spec = spec.without_mlflow()
        runs = spec.training.replicates
        progress(f"[{len(out) + 1}/{len(refs)}] running {ref} ({runs} run{'s' * (runs > 1)})")
        group = run_replicates(spec, spec_path=ref, registry=registry,
                               sinks=lambda spec=spec: sinks(spec))
        out.append(group.results[0].record.run_id if group.group_id is None
                   else f"group:{group.group_id}")
        progress(f"[{len(out)}/{len(refs)}] {ref}: {out[-1]}")
    return out
