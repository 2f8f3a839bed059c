"""What `esper compare` compares: sides, each one run or a replicate group (`group:<id>`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from esper.leyline.errors import EsperError
from esper.registry import Registry, RunRecord

GROUP_PREFIX = "group:"


class CompareError(EsperError):
    """`esper compare` was given something it cannot compare."""

    exit_code = 2  # an input matter: the references or the plot path


@dataclass(frozen=True)
class Side:
    """One column of a comparison: a run, or the runs of a replicate group (in seed order)."""

    runs: tuple[RunRecord, ...]
    group_id: str | None  # None: a single run

    @property
    def run_ids(self) -> list[str]:
        return [run.run_id for run in self.runs]

    @property
    def ref(self) -> str:
        """The full reference of this side (its run id, or ``group:<id>``): one that runs
        recorded later cannot make ambiguous, as a short prefix can."""
        return self.runs[0].run_id if self.group_id is None else GROUP_PREFIX + self.group_id


def resolve_side(registry: Registry, ref: str) -> Side:
    """The side `ref` names: ``group:<id>`` (the runs sharing that group id, or a unique
    prefix of it), else a run id, unique id prefix or name.

    Raises:
        CompareError: no group, an ambiguous group prefix, or the trials of a sweep.
        RunNotFound, AmbiguousRun: `ref` names no run, or several.
    """
    if not ref.startswith(GROUP_PREFIX):
        return Side((registry.resolve(ref),), None)
    wanted = ref[len(GROUP_PREFIX):]
    if not wanted:
        raise CompareError(f"'{ref}' names no group: give its id, e.g. group:3f2a9c01b7e4")
    groups = registry.group_ids(wanted)
    if wanted in groups:
        groups = [wanted]
    if len(groups) != 1:
        raise CompareError(_group_problem(registry, wanted, groups))
    members = sorted(registry.runs(group_id=groups[0]), key=lambda r: (r.seed, r.started_at))
    if any(run.parent_run_id == groups[0] for run in members):  # a sweep's trials
        raise CompareError(
            f"'{ref}' names the trials of sweep {groups[0]}, runs of different configs, not "
            f"replicates of one: rank them with esper compare sweep:{groups[0]}, or compare "
            "two of its trials' runs")
    return Side(tuple(members), groups[0])


def resolve_sides(registry: Registry, refs: Sequence[str]) -> list[Side]:
    """One side per reference, in order; the first is the baseline of every delta.

    Raises:
        CompareError: fewer than two references, or a bad group reference.
        RunNotFound, AmbiguousRun: a reference names no run, or several.
    """
    check_count(refs)
    return [resolve_side(registry, ref) for ref in refs]


def check_count(refs: Sequence[str]) -> None:
    """Raises CompareError when there are fewer than two references."""
    if len(refs) < 2:
        raise CompareError(f"compare needs at least two runs or groups, got {len(refs)}: "
                           f"{' '.join(refs) or '(none)'}; e.g. esper compare RUN_A RUN_B")


def _group_problem(registry: Registry, wanted: str, matches: list[str]) -> str:
    if matches:
        return (f"group id prefix '{wanted}' matches {len(matches)} groups: "
                f"{', '.join(matches[:8])}; give more characters of the id")
    known = registry.latest_group_ids(8)
    listed = ", ".join(known) if known else "none (run an experiment with training.replicates > 1)"
    return f"no replicate group '{wanted}' in {registry.path}; latest groups: {listed}"
