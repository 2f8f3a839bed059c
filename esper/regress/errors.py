"""Errors of `esper regress`: a bad suite (exit 2) and a suite that regressed (exit 1)."""

from __future__ import annotations

from esper.leyline.errors import EsperError


class SuiteError(EsperError):
    """A suite directory, one of its experiments, or one of its baseline files is unusable."""

    exit_code = 2


class RegressionFailed(EsperError):
    """At least one experiment of the suite regressed; the message names every regression."""

    exit_code = 1
