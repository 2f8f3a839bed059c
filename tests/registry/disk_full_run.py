"""`esper run` onto a small tmpfs that fills up mid-run: run as root in a private mount
namespace (``unshare --mount --propagation private python disk_full_run.py DIR OUT -- ARGS``).

Mounts a tmpfs on DIR, starts ``esper ARGS`` (its registry in DIR), waits until the run has
written events, fills the disk, waits for esper to end, then copies DIR's files to OUT with
``result.json`` (esper's exit code and stderr). Imports nothing of esper: it is the test's
hands, not its subject.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path


def run_events(registry: Path) -> int:
    """Events the run has recorded so far (0 while the registry is being set up)."""
    try:
        with sqlite3.connect(f"{registry.as_uri()}?mode=ro", uri=True) as conn:
            rows = conn.execute("SELECT event_count FROM runs").fetchall()
    except sqlite3.Error:
        return 0
    return rows[0][0] if rows else 0


def fill(directory: Path) -> None:
    with open(directory / "filler", "wb") as filler:
        try:
            while True:
                filler.write(b"\0" * 65_536)
                filler.flush()
        except OSError:  # ENOSPC: the disk is full
            return


def main(directory: Path, out: Path, args: list[str]) -> None:
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(directory)], check=True)
    esper = subprocess.Popen([sys.executable, "-c", "from esper.cli import main; main()", *args],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while run_events(directory / "runs.db") == 0 and esper.poll() is None:
        if time.monotonic() > deadline:
            esper.kill()
            break
        time.sleep(0.1)
    fill(directory)
    _, stderr = esper.communicate(timeout=300)
    for path in directory.iterdir():
        if path.name != "filler":
            shutil.copy(path, out / path.name)
    (out / "result.json").write_text(json.dumps({"rc": esper.returncode, "stderr": stderr}))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[4:])
