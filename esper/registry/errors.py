"""Errors of the run registry: `EsperError`s with a one-line message the user can act on."""

from __future__ import annotations

from typing import TYPE_CHECKING

from esper.leyline.errors import EsperError

if TYPE_CHECKING:
    from esper.registry.records import RunRecord


class RegistryError(EsperError):
    """``runs.db`` cannot be used: missing, not SQLite, damaged, foreign, newer, or locked."""


class RunNotFound(RegistryError):
    """No run matches a run reference (id, id prefix or name)."""

    exit_code = 2  # an input matter: the reference names no run


class AmbiguousRun(RegistryError):
    """A run reference matches more than one run: an id prefix of several, or the name of one
    and an id prefix of another."""

    exit_code = 2  # an input matter: give the full run id


class BadRunName(EsperError):
    """A new run's name could be misread as a run id prefix, or cannot be shown as typed."""

    exit_code = 2


class BadRegistryPath(RegistryError):
    """The registry named is not a file: an in-memory database, or a URI."""

    exit_code = 2


class RunInUse(RegistryError):
    """A run cannot be taken over: the process that owns it still lives."""

    exit_code = 2  # a usage matter: wait for the owner to end, or stop it

    def __init__(self, message: str, run: RunRecord) -> None:
        super().__init__(message)
        self.run = run  # as it is now, its owner's pid and host included


class RegistryFull(RegistryError):
    """``runs.db`` cannot grow: its disk is full, or the process's file size limit is reached."""


class RegistryGone(RegistryError):
    """``runs.db`` was deleted or replaced while open: writes since went to the old file."""


class RunHasChildren(RegistryError):
    """A run to delete is the parent of runs not being deleted (a sweep's trials)."""

    exit_code = 2  # a usage matter: name the children too, or --with-children


class BadTag(RegistryError):
    """A tag to set or remove cannot be: reserved for esper or MLflow, or not a valid key."""

    exit_code = 2
