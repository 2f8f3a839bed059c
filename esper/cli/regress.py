"""`esper regress`: run a regression suite, print its report, fail on a regression."""

from __future__ import annotations

import json
from pathlib import Path

import click

from esper.cli.options import json_option, no_mlflow_option, registry_option
from esper.regress.errors import RegressionFailed
from esper.regress.suite import load_suite
from esper.registry.storage import unwritable


@click.command("regress")
@click.argument("suite_dir", metavar="SUITE", type=click.Path(file_okay=False))
@click.option("--subset", help="Only the experiments of this subset of the suite's suite.yaml.")
@click.option("--update-baselines", is_flag=True,
              help="Record the fresh measurements as the baselines (only changed files are "
                   "rewritten); only thresholds and failing wiring fields can fail.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False),
              help="Also write the Markdown report to this file.")
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False),
              help="Write JUnit XML (one test case per metric, wiring and baseline).")
@registry_option()
@no_mlflow_option(
    "Record to the registry only, whatever the experiments' tracking.mlflow says.")
@json_option("Print the result as JSON, not Markdown.")
def regress_command(suite_dir: str, subset: str | None, update_baselines: bool,
                    report_path: str | None, junit_path: str | None, registry_path: str | None,
                    no_mlflow: bool, as_json: bool) -> None:
    """Run every experiment of SUITE and check it against its baseline and wiring.

    SUITE is a directory of experiment files with regression: blocks; baselines live in
    SUITE/baselines/. Prints the report (delta table per experiment) to stdout, progress to
    stderr. Runs are recorded like any other, tagged esper.suite. Exit code 1 on any
    regression, naming each; 2 for a bad suite or experiment.

    Example:

        \b
        esper regress experiments/regression --subset fast --report regression.md
    """
    from esper.regress.junit import junit_xml  # these import torch: not for `esper --help`
    from esper.regress.report import markdown_report, result_to_dict
    from esper.regress.runner import run_suite

    for option, path in (("--report", report_path), ("--junit", junit_path)):
        if path is not None:  # checked before the suite trains, not after
            problem = unwritable(path)
            if problem is not None:
                raise click.BadParameter(f"cannot write {path}: {problem}",
                                         param_hint=f"'{option}'")
    suite = load_suite(suite_dir, subset)
    result = run_suite(suite, registry=registry_path, mlflow=not no_mlflow,
                       update_baselines=update_baselines,
                       progress=lambda message: click.echo(message, err=True))
    report = markdown_report(result)
    if report_path:
        Path(report_path).write_text(report, encoding="utf-8")
    if junit_path:
        Path(junit_path).write_text(junit_xml(result), encoding="utf-8")
    click.echo(json.dumps(result_to_dict(result), indent=2) if as_json else report, nl=as_json)
    regressions = result.regressions
    if regressions:
        plural = "s" if len(regressions) != 1 else ""
        raise RegressionFailed(f"{len(regressions)} regression{plural} in suite {suite.name}:\n"
                               + "\n".join(regressions))

