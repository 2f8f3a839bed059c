"""The errors of a sweep a user can cause."""

from __future__ import annotations

from esper.leyline.errors import EsperError


class SweepError(EsperError):
    """The sweep is badly specified (search space, --grid, --resume); nothing has run."""

    exit_code = 2


class TrialsFailed(EsperError):
    """The sweep ran to its end, but some of its trials did not finish (exit code 1)."""
