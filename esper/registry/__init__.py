"""registry: the run registry (``runs.db``): runs, their events, metrics and wiring outcomes."""

from esper.registry.errors import AmbiguousRun, RegistryError, RunNotFound
from esper.registry.records import MetricSummary, NewRun, RunRecord, RunStatus, RunSummary
from esper.registry.registry import Registry

__all__ = [
    "AmbiguousRun",
    "MetricSummary",
    "NewRun",
    "Registry",
    "RegistryError",
    "RunNotFound",
    "RunRecord",
    "RunStatus",
    "RunSummary",
]
