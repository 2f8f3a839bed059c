"""Keep the C heap's freed memory for reuse during training (glibc only).

Each training batch allocates and frees the same activation and gradient buffers. By default
glibc serves blocks above a moving threshold with fresh mmap()s and gives freed heap tops back
to the OS, so the stacked envs' larger buffers (a few MB each) were page-faulted in anew on every
batch: on the esper-lite anchor that cost the stacked step about a third of its time
(measured with the step benchmark of issue 22). Serving blocks under 32 MiB from the heap and
keeping up to 1 GiB of freed heap makes them reused. Set once, process-wide, when a run stacks
its envs; it changes where memory comes from, never a result. The cost: memory a run frees is
kept by the process (its RSS stays at the high-water mark, up to 1 GiB more than in use), and
heap blocks may fragment. Other C libraries are left alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

_M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's largest allowed value on 64-bit
TRIM_THRESHOLD = 1024 * 1024 * 1024


@functools.cache
def reuse_freed_memory() -> bool:
    """Set glibc's mmap and trim thresholds once per process; False where there is no glibc
    `mallopt` (macOS, musl) or it refused."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return False
    if not hasattr(libc, "gnu_get_libc_version"):  # not glibc: its parameters may differ
        return False
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
