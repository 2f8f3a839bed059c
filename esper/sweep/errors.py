"""The errors of a sweep a user can cause."""

from __future__ import annotations

from esper.leyline.errors import EsperError


class SweepError(EsperError):
    """The sweep is badly specified (search space, --grid, --resume); nothing has run."""

    exit_code = 2
