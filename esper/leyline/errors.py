"""The one exception family: every error a user can cause is an `EsperError`."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

REASON_LENGTH = 300  # characters of an error's own message kept in describe_error


class EsperError(Exception):
    """A failure the user can act on: a one-line (or few-line) message and an exit code."""

    exit_code: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class SpecProblem:
    """One problem of an experiment file, located at ``source:line:column``."""

    source: str  # file path, or "--set key=value" for an override
    line: int | None  # 1-based; None when the problem has no position (e.g. an override)
    column: int | None  # 1-based
    path: str  # dotted key path, "" for the document itself
    message: str  # what is wrong, with what was expected

    def __str__(self) -> str:
        where = self.source if self.line is None else f"{self.source}:{self.line}:{self.column}"
        return f"{where}: {self.path or '(document)'}: {self.message}"


class SpecError(EsperError):
    """An experiment file (or its overrides) is invalid; holds every problem found."""

    exit_code = 2

    def __init__(self, problems: list[SpecProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def describe_error(exc: BaseException) -> str:
    """A short, whole reason for ``exc``: the operating system's (e.g. "Connection refused",
    "No such file or directory: x.pt") when an OS error caused it, else its type and the start
    of its first line."""
    root = _os_error(exc, set())
    if root is not None:
        return root
    lines = str(exc).strip().splitlines()
    text = textwrap.shorten(lines[0], REASON_LENGTH, placeholder=" ...") if lines else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _os_error(exc: BaseException, seen: set[int]) -> str | None:
    """The deepest operating-system error in the causes of ``exc`` (chained exceptions, and the
    ``reason`` or arguments urllib3 and requests wrap theirs in), as readable text."""
    if id(exc) in seen:
        return None
    seen.add(id(exc))
    causes = [exc.__cause__, exc.__context__, getattr(exc, "reason", None), *exc.args]
    for cause in causes:
        if isinstance(cause, BaseException):
            found = _os_error(cause, seen)
            if found is not None:
                return found
    if isinstance(exc, TimeoutError) or type(exc).__name__.endswith("TimeoutError"):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:  # e.g. Connection refused, Permission denied
        return exc.strerror if exc.filename is None else f"{exc.strerror}: {exc.filename}"
    return None
