"""Start recorder_script.py children and wait for them."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

SCRIPT = Path(__file__).with_name("recorder_script.py")


def start(registry: Path, mode: str, events: int, state: Path,
          start_at: float | None = None) -> subprocess.Popen[str]:
    state.mkdir(parents=True, exist_ok=True)
    args = [sys.executable, str(SCRIPT), str(registry), mode, str(events), str(state)]
    if start_at is not None:
        args.append(str(start_at))
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(path: Path, child: subprocess.Popen[str], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if child.poll() is not None:
            raise AssertionError(f"child exited {child.returncode}: {child.stderr.read()}")
        if time.monotonic() > deadline:
            child.kill()
            raise AssertionError(f"{path} did not appear within {timeout} s")
        time.sleep(0.02)
