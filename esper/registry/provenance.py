"""Where a run comes from: host, user, pid, git commit and dirty flag, versions."""

from __future__ import annotations

import getpass
import os
import platform
import socket
import subprocess
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import esper
from esper.registry import process


@dataclass(frozen=True)
class Provenance:
    host: str
    user: str | None
    pid: int
    pid_space: str | None  # see esper.registry.process; None: not Linux
    pid_start: int | None  # the process's start time in its pid space; None with pid_space
    git_commit: str | None  # None: the working directory is not in a git work tree
    git_dirty: bool | None  # tracked files differ from the commit (untracked files ignored)
    esper_version: str
    torch_version: str | None  # None: torch is not installed
    python_version: str


def collect(cwd: Path | None = None) -> Provenance:
    """Describe this process and the git work tree of ``cwd`` (default: the working directory)."""
    commit, dirty = _git_state(cwd or Path.cwd())
    return Provenance(
        host=socket.gethostname(),
        user=_user(),
        pid=os.getpid(),
        pid_space=process.pid_space(),
        pid_start=process.start_time(os.getpid()),
        git_commit=commit,
        git_dirty=dirty,
        esper_version=esper.__version__,
        torch_version=_version("torch"),  # from metadata: importing torch takes seconds
        python_version=platform.python_version(),
    )


def _git_state(cwd: Path) -> tuple[str | None, bool | None]:
    try:
        head = _git(cwd, "rev-parse", "--verify", "HEAD")
        if head is None:
            return None, None
        status = _git(cwd, "status", "--porcelain", "--untracked-files=no")
    except OSError:  # git is not installed
        return None, None
    return head, None if status is None else bool(status)


def _git(cwd: Path, *args: str) -> str | None:
    result = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=30, check=False
    )
    return result.stdout.strip() if result.returncode == 0 else None


def _user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no LOGNAME/USER (some containers)
        return None


def _version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None
