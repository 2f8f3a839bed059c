"""`esper regress`: run every experiment of a suite and check it against its baseline.

An experiment regresses when its run crashes, when a metric fails its rule (see
`thresholds`), when a wiring field fails (see `wiring_diff`), or when it has no baseline yet
(or one measured with another seed or number of replicates: it is not compared with).
A crash (any exception but an `EsperError`, which is bad input and stops the suite) is recorded
FAILED with its traceback like any run; the suite goes on with the next experiment.

With `update_baselines`, the fresh measurements become the baselines (a file is rewritten only
when its content changed) and only what does not depend on the baseline can fail: crashes,
thresholds and FAIL / XPASS fields.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from esper.leyline.errors import EsperError
from esper.regress.baselines import Baseline, baseline_path, read_baseline, write_baseline
from esper.regress.measure import Measurement, measure
from esper.regress.suite import Suite, SuiteExperiment
from esper.regress.thresholds import MetricCheck, check_metric
from esper.regress.wiring_diff import WiringFinding, recorded_wiring, wiring_findings


@dataclass(frozen=True)
class Regression:
    """One regression of an experiment."""

    case: str  # what failed: "run", "baseline", "metric <name>" or "wiring" (a JUnit case)
    text: str  # one line naming the metric or field and the values

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class ExperimentResult:
    """One experiment of a suite: what it measured, and how that compares with its baseline."""

    experiment: SuiteExperiment
    measurement: Measurement | None  # None: the run crashed
    baseline_file: Path
    baseline: Baseline | None  # the baseline it was checked against; None: there was none
    checks: tuple[MetricCheck, ...]  # in the order of the regression block
    wiring: tuple[WiringFinding, ...]  # failing fields and changes from the baseline
    updating: bool  # run with --update-baselines
    baseline_written: bool  # updating, and the baseline file changed
    crash: str | None = None  # "ExceptionClass: message" of a run that crashed

    @property
    def regressions(self) -> list[Regression]:
        """Each regression of this experiment, naming the metric or field."""
        found = []
        if self.crash is not None:
            found.append(Regression("run", f"run crashed: {self.crash}"))
        elif self.baseline is None and not self.updating:
            found.append(Regression("baseline", f"no baseline {self.baseline_file}; record it "
                                                "with esper regress --update-baselines"))
        elif self.baseline_mismatch is not None and not self.updating:
            found.append(Regression("baseline", self.baseline_mismatch))
        for check in self.checks:
            found += [Regression(_metric_case(check), f"metric {failure}")
                      for failure in self.counted_failures(check)]
        comparable = not self.updating and self.baseline_mismatch is None
        found += [Regression("wiring", f"wiring {finding.describe()}") for finding in self.wiring
                  if finding.regression and (comparable or not finding.against_baseline)]
        return found

    @property
    def baseline_mismatch(self) -> str | None:
        """Why the baseline measured something else than the experiment runs now (another seed
        or number of replicates); None when it did not, or there is no baseline."""
        if self.baseline is None:
            return None
        was = (self.baseline.seed, self.baseline.replicates)
        now = (self.experiment.spec.seed, self.experiment.regression.replicates)
        if was == now:
            return None
        return (f"baseline {self.baseline_file} was measured with seed {was[0]} and {was[1]} "
                f"replicate(s), the experiment now runs seed {now[0]} and {now[1]}; record it "
                "again with esper regress --update-baselines")

    def counted_failures(self, check: MetricCheck) -> tuple[str, ...]:
        """The failures of `check` that count: all of them, but only those of the value alone
        when updating the baselines, when there is no baseline file, or when the baseline was
        measured with another seed or number of replicates (one regression says so)."""
        if not self.updating and self.baseline is not None and self.baseline_mismatch is None:
            return check.failures
        return check.value_failures

    @property
    def cases(self) -> list[str]:
        """Everything checked, as the `Regression.case` names: run, baseline, each metric,
        wiring."""
        return ["run", "baseline", *(_metric_case(check) for check in self.checks), "wiring"]

    @property
    def passed(self) -> bool:
        """No regression."""
        return not self.regressions


def _metric_case(check: MetricCheck) -> str:
    return f"metric {check.metric}"


@dataclass(frozen=True)
class SuiteResult:
    """Every experiment of a suite run."""

    suite: Suite
    experiments: tuple[ExperimentResult, ...]

    @property
    def regressions(self) -> list[str]:
        """Every regression, as `experiment: what`."""
        return [f"{result.experiment.name}: {regression}"
                for result in self.experiments for regression in result.regressions]

    @property
    def passed(self) -> bool:
        """No experiment regressed."""
        return not self.regressions


def run_suite(suite: Suite, *, registry: str | os.PathLike[str] | None = None,
              mlflow: bool = True, update_baselines: bool = False,
              progress: Callable[[str], None] = lambda message: None) -> SuiteResult:
    """Run and check every experiment of `suite`, one after the other.

    :param mlflow: False records to the registry only; True lets each experiment's
        tracking.mlflow decide
    :param update_baselines: write the fresh measurements as the baselines (only changed files)
    :param progress: told about each experiment as it starts
    Raises:
        SuiteError: a baseline file is unreadable.
        EsperError: bad input, as `esper.experiment.runner.run` (a crash is a regression).
    """
    for experiment in suite.experiments:  # an unreadable baseline fails now, not after training
        read_baseline(baseline_path(suite.directory, experiment.name))
    results = []
    for index, experiment in enumerate(suite.experiments, start=1):
        progress(f"[{index}/{len(suite.experiments)}] {experiment.name} ({experiment.path})")
        try:
            measurement = measure(experiment, suite.name, mlflow=mlflow, registry=registry)
        except EsperError:
            raise
        except Exception as error:  # a bug the run revealed: recorded FAILED, reported here
            crash = f"{type(error).__name__}: {error}"
            progress(f"{experiment.name} crashed: {crash}")
            results.append(crashed_experiment(experiment, suite.directory, crash,
                                              update_baselines))
            continue
        results.append(check_experiment(experiment, measurement, suite.directory,
                                        update_baselines))
    return SuiteResult(suite, tuple(results))


def check_experiment(experiment: SuiteExperiment, measurement: Measurement, suite_dir: Path,
                     update_baselines: bool = False) -> ExperimentResult:
    """Check `measurement` against the experiment's baseline file in `suite_dir`; rewrite that
    file with the measurement when `update_baselines` and its content changed."""
    path = baseline_path(suite_dir, experiment.name)
    baseline = read_baseline(path)
    checks = tuple(
        check_metric(name, rule, measurement.metrics[name],
                     None if baseline is None else baseline.metrics.get(name))
        for name, rule in experiment.regression.metrics.items())
    recorded = None if baseline is None else baseline.wiring
    wiring = tuple(wiring_findings(measurement.wiring, recorded))
    written = update_baselines and write_baseline(path, Baseline(
        experiment=experiment.name, seed=experiment.spec.seed,
        replicates=experiment.regression.replicates, metrics=measurement.metrics,
        wiring=recorded_wiring(measurement.wiring)))
    return ExperimentResult(experiment, measurement, path, baseline, checks, wiring,
                            update_baselines, written)


def crashed_experiment(experiment: SuiteExperiment, suite_dir: Path, crash: str,
                       update_baselines: bool = False) -> ExperimentResult:
    """The result of an experiment whose run crashed with `crash`; its baseline is kept."""
    path = baseline_path(suite_dir, experiment.name)
    return ExperimentResult(experiment, None, path, read_baseline(path), (), (),
                            update_baselines, False, crash)
