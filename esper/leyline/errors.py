"""The one exception family: every error a user can cause is an `EsperError`."""

from __future__ import annotations

from dataclasses import dataclass


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
