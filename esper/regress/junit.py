"""JUnit XML of a suite run, for CI dashboards: one <testsuite> per experiment, one <testcase>
per metric, one for the wiring, one for the baseline file and one for the run; a regression
is a <failure>, a crashed run an <error>."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from esper.regress.runner import ExperimentResult, SuiteResult


def junit_xml(result: SuiteResult) -> str:
    """The JUnit XML document of `result`."""
    root = ET.Element("testsuites", name=f"esper regress {result.suite.name}")
    for experiment in result.experiments:
        root.append(_testsuite(result.suite.name, experiment))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _testsuite(suite: str, experiment: ExperimentResult) -> ET.Element:
    name = experiment.experiment.name
    regressions = experiment.regressions
    cases = ["run", "baseline", *(f"metric {check.metric}" for check in experiment.checks),
             "wiring"]
    failed = {case: [r.text for r in regressions if r.case == case] for case in cases}
    wall = 0.0 if experiment.measurement is None else experiment.measurement.wall_time_s
    errors = 1 if failed["run"] else 0
    element = ET.Element("testsuite", name=name, tests=str(len(cases)),
                         failures=str(sum(1 for case in cases if failed[case]) - errors),
                         errors=str(errors), time=f"{wall:.3f}")
    for case in cases:
        testcase = ET.SubElement(element, "testcase", classname=f"{suite}.{name}", name=case)
        if failed[case]:
            kind = "error" if case == "run" else "failure"
            failure = ET.SubElement(testcase, kind, message=failed[case][0])
            failure.text = "\n".join(failed[case])
    return element
