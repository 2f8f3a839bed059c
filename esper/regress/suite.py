"""A regression suite: a directory of experiments, each with a `regression:` block.

Every `*.yaml` (or `*.yml`) file in the directory is an experiment of the suite, except the
optional manifest `suite.yaml`:

    name: regression          # the suite's name (default: the directory's name)
    subsets:                  # named selections, for `esper regress SUITE --subset fast`
      fast: [heuristic_digits, lstm_tele340]

Baselines live beside them, in `baselines/<experiment>.json` (see `baselines`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from esper.compare.experiments import EXPERIMENT_SUFFIXES
from esper.experiment import load
from esper.experiment.yaml_source import parse_yaml
from esper.leyline.config import ExperimentSpec, RegressionConfig
from esper.leyline.errors import SpecError
from esper.regress.errors import SuiteError

MANIFEST = "suite.yaml"


@dataclass(frozen=True)
class SuiteExperiment:
    """One experiment of a suite, loaded and validated."""

    path: Path
    spec: ExperimentSpec
    regression: RegressionConfig  # the spec's regression block (never None in a suite)

    @property
    def name(self) -> str:
        """The experiment's name (its baseline file is named after it)."""
        return self.spec.name


@dataclass(frozen=True)
class Suite:
    """The experiments to run, in file-name order."""

    name: str
    directory: Path
    experiments: tuple[SuiteExperiment, ...]
    subset: str | None  # None: every experiment of the directory


def load_suite(directory: str | Path, subset: str | None = None) -> Suite:
    """Load the suite in `directory`, or only the experiments of its subset `subset`.

    Raises:
        SuiteError: not a directory, no experiments, a bad manifest, an unknown subset, an
            experiment without a `regression:` block, two experiments of the same name.
        SpecError: experiment files are invalid (every problem of every file; the loader
            checks the regression blocks: known metrics, each checking something).
    """
    root = Path(directory)
    if not root.is_dir():
        raise SuiteError(f"suite {root}: not a directory (expected a directory of experiment "
                         f"YAML files with regression: blocks)")
    manifest = _read_manifest(root / MANIFEST)
    paths = sorted(p for p in root.iterdir()
                   if p.suffix in EXPERIMENT_SUFFIXES and p.name != MANIFEST)
    if not paths:
        raise SuiteError(f"suite {root}: no experiment files (*.yaml, *.yml) in it")
    experiments = _suite_experiments(paths)
    _check_unique_names(experiments)
    if subset is not None:
        experiments = _select(experiments, manifest["subsets"], subset, root)
    return Suite(manifest["name"] or root.resolve().name, root, tuple(experiments), subset)


def _read_manifest(path: Path) -> dict[str, Any]:
    manifest: dict[str, Any] = {"name": None, "subsets": {}}
    if not path.exists():
        return manifest
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SuiteError(f"{path}: cannot read the suite manifest: {error}") from None
    parsed, problems = parse_yaml(text, str(path))  # as experiment files are read (YAML 1.2)
    if problems:
        where = problems[0].location
        raise SuiteError(f"{where.source}:{where.line}:{where.column}: cannot read the suite "
                         f"manifest: {problems[0].message}")
    data = (parsed.data if parsed is not None else None) or {}
    unknown = sorted(set(data) - set(manifest)) if isinstance(data, dict) else None
    if unknown is None or unknown:
        raise SuiteError(f"{path}: unexpected content {unknown or data!r}; expected a mapping "
                         "with name (text) and subsets (subset name -> list of experiment names)")
    name = data.get("name")
    if name is not None and not (isinstance(name, str) and name.strip()):
        raise SuiteError(f"{path}: name must be a non-empty text (it tags the suite's runs "
                         f"esper.suite=<name>), got {name!r}")
    subsets = data.get("subsets", {})
    if not (isinstance(subsets, dict) and all(
            isinstance(names, list) and all(isinstance(n, str) for n in names)
            for names in subsets.values())):
        raise SuiteError(f"{path}: subsets must map each subset name to a list of experiment "
                         f"names, got {subsets!r}")
    manifest.update(data)
    return manifest


def _suite_experiments(paths: list[Path]) -> list[SuiteExperiment]:
    """The experiments of `paths`, each loaded (all files' problems reported at once)."""
    specs, problems = {}, []
    for path in paths:
        try:
            specs[path] = load(path)
        except SpecError as error:
            problems += error.problems
    if problems:
        raise SpecError(problems)
    for path, spec in specs.items():
        if spec.regression is None:
            raise SuiteError(f"{path}: experiment {spec.name!r} has no regression: block (a "
                             "suite experiment declares the metrics it is checked on)")
    return [SuiteExperiment(path, spec, spec.regression) for path, spec in specs.items()]


def _check_unique_names(experiments: list[SuiteExperiment]) -> None:
    seen: dict[str, Path] = {}
    for experiment in experiments:
        if experiment.name in seen:
            raise SuiteError(f"{experiment.path}: experiment name {experiment.name!r} is also "
                             f"used by {seen[experiment.name]}; names must be unique in a "
                             "suite (each has one baseline file)")
        seen[experiment.name] = experiment.path


def _select(experiments: list[SuiteExperiment], subsets: dict[str, list[str]], subset: str,
            root: Path) -> list[SuiteExperiment]:
    if subset not in subsets:
        known = ", ".join(sorted(subsets)) or "none"
        raise SuiteError(f"suite {root}: no subset {subset!r} in {MANIFEST} (subsets: {known})")
    by_name = {e.name: e for e in experiments}
    unknown = [name for name in subsets[subset] if name not in by_name]
    if unknown:
        raise SuiteError(f"{root / MANIFEST}: subset {subset!r} names {unknown[0]!r}, which is "
                         f"no experiment of the suite (experiments: {', '.join(sorted(by_name))})")
    return [by_name[name] for name in subsets[subset]]
