"""esper: a declarative experiment runner for morphogenetic neural-network training.

The library the `esper` command is a thin layer over::

    import esper

    spec = esper.load("experiments/quickstart.yaml", ("training.batches=1",))
    result = esper.run(spec, registry="runs.db")        # one run: record, wiring, summary
    group = esper.run_replicates(spec)                 # training.replicates runs
    with esper.Registry.open("runs.db") as registry:
        report = esper.compare_runs(registry, [result.record.run_id, "quickstart-1"])

The names load lazily: ``import esper`` imports neither torch nor MLflow.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("esper")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"

# public name -> (the module that defines it, its name there). A name must not be a
# subpackage's (esper.compare is one): importing the subpackage would shadow it.
_API = {
    "load": ("esper.experiment", "load"),  # an experiment file (+ overrides) -> ExperimentSpec
    "spec_from_dict": ("esper.experiment", "spec_from_dict"),  # a config mapping -> spec
    "run": ("esper.experiment.runner", "run"),  # train and record one run -> RunResult
    "run_replicates": ("esper.experiment.replicates", "run_replicates"),  # -> ReplicateGroup
    "Registry": ("esper.registry", "Registry"),  # runs.db: runs, events, metrics, wiring
    "compare_runs": ("esper.compare.report", "compare"),  # runs or groups -> Comparison
    "run_sweep": ("esper.sweep.driver", "run_sweep"),  # a sweep on an executor -> SweepResult
    "run_suite": ("esper.regress.runner", "run_suite"),  # a regression suite -> SuiteResult
}
__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    """Import a public name on first use (PEP 562)."""
    if name not in _API:
        raise AttributeError(f"module 'esper' has no attribute {name!r}")
    module, attribute = _API[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value
