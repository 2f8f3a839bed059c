"""`memory` probe: the process's memory at the end of every batch, and a warning above a bound.

BATCH_COMPLETED gets rss_mb (the resident set size, read from /proc/self/statm) and, on a GPU,
cuda_allocated_mb / cuda_reserved_mb (torch.cuda.memory_allocated / memory_reserved of the
run's device); off a GPU those two stay None. MEMORY_WARNING follows BATCH_COMPLETED whenever
rss_mb is above `telemetry.memory.rss_warning_mb`. Where the OS offers no /proc (not Linux) the
resident size cannot be read: rss_mb stays None, and the probe says so once in the log. When
the envs are stacked (`training.batch_envs`), glibc keeps freed heap memory for reuse
(esper/tolaria/allocator.py): rss_mb is then the heap's high-water mark, not the memory in use.
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from pathlib import Path

import torch

from esper.leyline.config import MemoryOptions
from esper.leyline.emitter import Emitter
from esper.leyline.events import (BatchCompletedPayload, MemoryWarningPayload, Severity,
                                  TelemetryEventType)

log = logging.getLogger(__name__)

STATM = Path("/proc/self/statm")  # size resident shared text lib data dt, in pages
MIB = 2.0**20


def resident_mb() -> float:
    """The resident set size of this process, MiB (Linux)."""
    resident_pages = int(STATM.read_text().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / MIB


class MemoryProbe:
    """Measures memory for every BATCH_COMPLETED and warns above the bound."""

    def __init__(self, options: MemoryOptions, hub: Emitter, device: torch.device) -> None:
        self.threshold_mb, self.hub = options.rss_warning_mb, hub
        self.cuda = device if device.type == "cuda" else None
        self.readable = STATM.exists()
        if not self.readable:
            log.warning("memory probe: %s is not available here; rss_mb is not measured", STATM)

    def batch_fields(self, payload: BatchCompletedPayload) -> BatchCompletedPayload:
        """`payload` with the memory measured now."""
        cuda = self.cuda
        return replace(
            payload,
            rss_mb=resident_mb() if self.readable else None,
            cuda_allocated_mb=None if cuda is None else torch.cuda.memory_allocated(cuda) / MIB,
            cuda_reserved_mb=None if cuda is None else torch.cuda.memory_reserved(cuda) / MIB,
        )

    def batch_completed(self, batch: int, payload: BatchCompletedPayload) -> None:
        """Warn when the batch's recorded resident size is above the bound."""
        if payload.rss_mb is not None and payload.rss_mb > self.threshold_mb:
            self.hub.emit(TelemetryEventType.MEMORY_WARNING, MemoryWarningPayload(
                rss_mb=payload.rss_mb, threshold_mb=self.threshold_mb,
                cuda_allocated_mb=payload.cuda_allocated_mb),
                severity=Severity.WARNING, batch=batch,
                message=f"resident memory {payload.rss_mb:.0f} MiB > {self.threshold_mb:g} MiB")
