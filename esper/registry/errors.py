"""Errors of the run registry: `EsperError`s with a one-line message the user can act on."""

from __future__ import annotations

from esper.leyline.errors import EsperError


class RegistryError(EsperError):
    """``runs.db`` cannot be used: missing, not SQLite, damaged, foreign, newer, or locked."""


class RunNotFound(RegistryError):
    """No run matches a run reference (id, id prefix or name)."""


class AmbiguousRun(RegistryError):
    """A run id prefix matches more than one run."""
