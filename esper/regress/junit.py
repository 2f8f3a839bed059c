"""JUnit XML of a suite run, for CI dashboards: one <testsuite> per experiment, one <testcase>
per metric, one for the wiring, one for the baseline file and one for the run; a regression
is a <failure>, a crashed run an <error>.

The document follows the Ant JUnit schema (the one CI dashboards read): the root <testsuites>
carries the totals (tests, failures, errors, time); each <testsuite> its package (the suite),
id, timestamp (the experiment's start, ISO 8601 without a zone, UTC), hostname, counts and
time, then <properties>, its test cases and <system-out> / <system-err>; each <testcase> its
time (the run case holds the experiment's wall time, the checks take none of their own); each
<failure> / <error> a message and a type (the kind of regression, or the crash's exception).
"""

from __future__ import annotations

import socket
import time
import xml.etree.ElementTree as ET
from datetime import datetime, timezone

from esper.regress.runner import ExperimentResult, SuiteResult

_COUNTS = ("tests", "failures", "errors", "time")


def junit_xml(result: SuiteResult) -> str:
    """The JUnit XML document of `result`."""
    root = ET.Element("testsuites", name=f"esper regress {result.suite.name}")
    host = socket.gethostname()
    suites = [_testsuite(result.suite.name, index, experiment, host)
              for index, experiment in enumerate(result.experiments)]
    for name in _COUNTS:
        total = sum(float(suite.get(name, "0")) for suite in suites)
        root.set(name, f"{total:.3f}" if name == "time" else str(int(total)))
    root.extend(suites)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _testsuite(suite: str, index: int, experiment: ExperimentResult, host: str) -> ET.Element:
    name = experiment.experiment.name
    failed: dict[str, list[str]] = {case: [] for case in experiment.cases}
    for regression in experiment.regressions:
        failed[regression.case].append(regression.text)
    measurement = experiment.measurement
    wall = 0.0 if measurement is None else measurement.wall_time_s
    started = time.time() if measurement is None else measurement.started_at
    errors = 1 if failed["run"] else 0
    element = ET.Element("testsuite", name=name, package=suite, id=str(index),
                         timestamp=_timestamp(started), hostname=host, tests=str(len(failed)),
                         failures=str(sum(1 for texts in failed.values() if texts) - errors),
                         errors=str(errors), skipped="0", time=f"{wall:.3f}")
    ET.SubElement(element, "properties")
    for case, texts in failed.items():
        testcase = ET.SubElement(element, "testcase", classname=f"{suite}.{name}", name=case,
                                 time=f"{wall if case == 'run' else 0.0:.3f}")
        if texts:
            kind = "error" if case == "run" else "failure"
            failure = ET.SubElement(testcase, kind, message=texts[0],
                                    type=_failure_type(case, experiment.crash))
            failure.text = "\n".join(texts)
    ET.SubElement(element, "system-out")
    ET.SubElement(element, "system-err")
    return element


def _failure_type(case: str, crash: str | None) -> str:
    """The crash's exception class for the run case, else the kind of check that regressed."""
    if case == "run" and crash is not None:
        return crash.partition(":")[0]
    return f"esper.regress.{case.partition(' ')[0]}"


def _timestamp(unix: float) -> str:
    return datetime.fromtimestamp(unix, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
