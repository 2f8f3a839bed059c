"""The report of a suite run: Markdown (a PR-comment-like delta table per experiment) and JSON."""

from __future__ import annotations

from typing import Any

from esper.registry.render import markdown_table
from esper.regress.runner import ExperimentResult, SuiteResult
from esper.regress.thresholds import MetricCheck, describe_rule


def markdown_report(result: SuiteResult) -> str:
    """The whole report: verdict, one summary row per experiment, then each experiment's
    metric delta table, its wiring findings and the regressions named."""
    suite = result.suite
    regressions = result.regressions
    verdict = "PASSED" if not regressions else (
        f"FAILED ({len(regressions)} regression{'s' if len(regressions) != 1 else ''})")
    subset = f", subset `{suite.subset}`" if suite.subset else ""
    lines = [f"# Regression suite `{suite.name}`{subset}: {verdict}", "",
             *markdown_table(["experiment", "result", "runs", "seeds", "wall s", "baseline"],
                             [_summary_row(experiment) for experiment in result.experiments])]
    for experiment in result.experiments:
        lines += ["", *_experiment_section(experiment)]
    return "\n".join(lines) + "\n"


def result_to_dict(result: SuiteResult) -> dict[str, Any]:
    """The JSON shape of a suite run (`esper regress --json`)."""
    return {"suite": result.suite.name, "subset": result.suite.subset, "passed": result.passed,
            "regressions": result.regressions,
            "experiments": [_experiment_to_dict(e) for e in result.experiments]}


def _baseline_state(experiment: ExperimentResult) -> str:
    if experiment.updating and experiment.crash is None:
        return "written" if experiment.baseline_written else "unchanged"
    if experiment.baseline is None:
        return "missing"
    return "compared" if experiment.baseline_mismatch is None else "stale"


def _summary_row(experiment: ExperimentResult) -> tuple[str, ...]:
    measured = experiment.measurement
    runs = "crashed" if measured is None else ", ".join(measured.run_ids)
    seeds = "-" if measured is None else ", ".join(str(seed) for seed in measured.seeds)
    wall = "-" if measured is None else f"{measured.wall_time_s:.1f}"
    return (experiment.experiment.name, "PASS" if experiment.passed else "**FAIL**", runs, seeds,
            wall, _baseline_state(experiment))


def _experiment_section(experiment: ExperimentResult) -> list[str]:
    spec = experiment.experiment
    lines = [f"## {spec.name}: {'PASS' if experiment.passed else 'FAIL'}", "",
             f"`{spec.path}`, baseline `{experiment.baseline_file}` "
             f"({_baseline_state(experiment)})", ""]
    if experiment.crash is not None:
        return lines + [f"The run crashed: `{experiment.crash}` (recorded FAILED with its "
                        "traceback: `esper runs --status FAILED`)."]
    lines += markdown_table(["metric", "rule", "baseline", "value", "delta", "delta %", "result"],
                            [_metric_row(experiment, check) for check in experiment.checks])
    compared = " from the baseline" if experiment.baseline else ""
    lines += ["", f"Wiring: no field fails or differs{compared}." if not experiment.wiring else
              f"Wiring: {len(experiment.wiring)} fields fail or differ{compared}:"]
    if experiment.wiring:
        lines += ["", *markdown_table(
            ["field", "baseline", "now", "regression", "reason"],
            [(f.key, f.baseline or "-", f.outcome or "gone", "yes" if f.regression else "no",
              f.reason) for f in experiment.wiring])]
    if experiment.regressions:
        lines += ["", "Regressions:", ""] + [f"- {r}" for r in experiment.regressions]
    return lines


def _metric_row(experiment: ExperimentResult, check: MetricCheck) -> tuple[str, ...]:
    delta, fraction = check.delta, check.delta_fraction
    return (check.metric, f"{check.rule.direction}: {describe_rule(check.rule)}",
            "-" if experiment.baseline is None else _cell(check.baseline), _cell(check.value),
            "-" if delta is None else f"{delta:+.6g}",
            "-" if fraction is None else f"{fraction:+.1%}",
            "**FAIL**" if experiment.counted_failures(check) else "PASS")


def _cell(value: float | None) -> str:
    return "not measured" if value is None else f"{value:.6g}"


def _experiment_to_dict(experiment: ExperimentResult) -> dict[str, Any]:
    measured = experiment.measurement
    return {
        "experiment": experiment.experiment.name, "path": str(experiment.experiment.path),
        "passed": experiment.passed, "regressions": [str(r) for r in experiment.regressions],
        "crash": experiment.crash,
        "run_ids": [] if measured is None else list(measured.run_ids),
        "seeds": [] if measured is None else list(measured.seeds),
        "group_id": None if measured is None else measured.group_id,
        "wall_time_s": None if measured is None else measured.wall_time_s,
        "baseline_file": str(experiment.baseline_file), "baseline": _baseline_state(experiment),
        "metrics": [{"metric": c.metric, "direction": c.rule.direction,
                     "rule": describe_rule(c.rule), "baseline": c.baseline, "value": c.value,
                     "delta": c.delta,
                     "passed": not experiment.counted_failures(c),
                     "failures": list(experiment.counted_failures(c))} for c in experiment.checks],
        "wiring": [{"field": f.key, "baseline": f.baseline, "outcome": f.outcome,
                    "regression": f.regression, "reason": f.reason} for f in experiment.wiring],
    }
