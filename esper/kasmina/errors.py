"""Errors raised by kasmina: all are `EsperError`s with a one-line message."""

from __future__ import annotations

from esper.leyline.errors import EsperError


class KasminaError(EsperError):
    """Base of kasmina's errors."""


class BlueprintError(KasminaError):
    """A blueprint is unknown or does not preserve its input's shape."""


class LifecycleError(KasminaError):
    """A lifecycle operation is not allowed in the slot's current state (e.g. an invalid
    stage transition, germinating an occupied slot, or pruning a fossilized seed)."""


class SlotConfigError(KasminaError):
    """The slot configuration does not fit the host (e.g. slot r0c5 on a 3-block host)."""

    exit_code = 2
