"""JUnit XML of a suite run, for CI dashboards: one <testsuite> per experiment, one <testcase>
per metric, one for the wiring and one for the baseline file; a regression is a <failure>."""

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
    cases = ["baseline", *(f"metric {check.metric}" for check in experiment.checks), "wiring"]
    failed = {case: [r.text for r in regressions if r.case == case] for case in cases}
    element = ET.Element("testsuite", name=name, tests=str(len(cases)),
                         failures=str(sum(1 for case in cases if failed[case])), errors="0",
                         time=f"{experiment.measurement.wall_time_s:.3f}")
    for case in cases:
        testcase = ET.SubElement(element, "testcase", classname=f"{suite}.{name}", name=case)
        if failed[case]:
            failure = ET.SubElement(testcase, "failure", message=failed[case][0])
            failure.text = "\n".join(failed[case])
    return element
