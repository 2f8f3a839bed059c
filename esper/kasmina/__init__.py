"""kasmina: the host network, its seed slots and the seed lifecycle (gates, blending, blueprints).

Entry points: `MorphogeneticModel` (host + slots), `SeedSlot` (the module side of one slot),
`SeedLifecycle` (its torch-free state machine), `fused_validate` (validation with counterfactual
contributions), `check_gate`. The names of modules that import torch load on first use, so the
lifecycle, gates and state import without torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from esper.kasmina.alpha import AlphaController, AlphaSchedule, curve_value
from esper.kasmina.errors import BlueprintError, KasminaError, LifecycleError, SlotConfigError
from esper.kasmina.gates import check_gate
from esper.kasmina.lifecycle import DEFAULT_SCHEDULE, SeedLifecycle
from esper.kasmina.state import (
    GateEvaluation,
    GradientStats,
    Initiator,
    SeedState,
    SlotUpdate,
    StageTransition,
)

# public name -> the module (importing torch) that defines it
_TORCH_NAMES = {
    "BLUEPRINTS": "esper.kasmina.blueprints",
    "build_blueprint": "esper.kasmina.blueprints",
    "param_count": "esper.kasmina.blueprints",
    "FusedValidation": "esper.kasmina.counterfactual",
    "fused_validate": "esper.kasmina.counterfactual",
    "CNNHost": "esper.kasmina.host",
    "MorphogeneticModel": "esper.kasmina.host",
    "SeedSlot": "esper.kasmina.slot",
}

__all__ = [
    "AlphaController", "AlphaSchedule", "curve_value", "BlueprintError", "KasminaError",
    "LifecycleError", "SlotConfigError", "check_gate", "DEFAULT_SCHEDULE", "SeedLifecycle",
    "GateEvaluation", "GradientStats", "Initiator", "SeedState", "SlotUpdate", "StageTransition",
    *_TORCH_NAMES,
]


def __getattr__(name: str) -> Any:
    """Import a torch-backed public name on first use (PEP 562)."""
    if name not in _TORCH_NAMES:
        raise AttributeError(f"module 'esper.kasmina' has no attribute {name!r}")
    value = getattr(importlib.import_module(_TORCH_NAMES[name]), name)
    globals()[name] = value
    return value
