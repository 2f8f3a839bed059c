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
    failed: dict[str, list[str]] = {case: [] for case in experiment.cases}
    for regression in experiment.regressions:
        failed[regression.case].append(regression.text)
    wall = 0.0 if experiment.measurement is None else experiment.measurement.wall_time_s
    errors = 1 if failed["run"] else 0
    element = ET.Element("testsuite", name=name, tests=str(len(failed)),
                         failures=str(sum(1 for texts in failed.values() if texts) - errors),
                         errors=str(errors), time=f"{wall:.3f}")
    for case, texts in failed.items():
        testcase = ET.SubElement(element, "testcase", classname=f"{suite}.{name}", name=case)
        if texts:
            kind = "error" if case == "run" else "failure"
            failure = ET.SubElement(testcase, kind, message=texts[0])
            failure.text = "\n".join(texts)
    return element
