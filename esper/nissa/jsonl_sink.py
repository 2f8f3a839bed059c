"""A sink that appends every event to a JSON Lines file (one envelope per line); a path ending in
``.gz`` is written gzip-compressed."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import TextIO

from esper.leyline.codec import encode_event
from esper.leyline.events import TelemetryEvent


class JsonlSink:
    """Appends events to ``path`` as JSON Lines; each batch is flushed to the OS on write."""

    def __init__(self, path: str | Path, name: str = "jsonl") -> None:
        self.name = name
        path = Path(path)
        self._file: TextIO = (gzip.open(path, "at", encoding="utf-8") if path.suffix == ".gz"
                              else path.open("a", encoding="utf-8"))

    def write(self, events: list[TelemetryEvent]) -> None:
        self._file.write("".join(encode_event(e) + "\n" for e in events))
        self._file.flush()

    def close(self) -> None:
        self._file.close()
