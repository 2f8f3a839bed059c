"""Which process a run's row names, and whether that very process still lives (Linux /proc).

A pid alone does not name a process: after it exits, the kernel hands the number to the next
one. A run records, beside its pid, the pid's *space* (this boot of the kernel and its pid
namespace) and the process's start time, so a reader in the same space can tell the run's own
process from a stranger that reuses its pid, however long the run has been paused (SIGSTOP,
a laptop's sleep) without a heartbeat. Elsewhere (another host or container, non-Linux) these
are None and the heartbeat decides.
"""

from __future__ import annotations

import os
from pathlib import Path

_PROC = Path("/proc")


def pid_space() -> str | None:
    """This process's pid space: ``<boot id>/<pid namespace>``, None where /proc lacks them."""
    try:
        boot_id = (_PROC / "sys/kernel/random/boot_id").read_text().strip()
        namespace = os.readlink(_PROC / "self/ns/pid")
    except OSError:
        return None
    return f"{boot_id}/{namespace}"


def start_time(pid: int) -> int | None:
    """When process `pid` of this pid space started (clock ticks after boot, field 22 of
    /proc/PID/stat); None if no such process lives (a zombie has ended: it only awaits its
    parent's wait())."""
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # "pid (comm) state ppid ...": comm may hold spaces and parentheses; the rest is fields 3...
    fields = stat[stat.rindex(")") + 2:].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def is_alive(pid: int, started: int) -> bool:
    """True if process `pid` of this pid space lives and is the one that started at `started`."""
    return start_time(pid) == started
