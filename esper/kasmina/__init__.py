"""kasmina: the host network, its seed slots and the seed lifecycle (gates, blending, blueprints).

Entry points: `MorphogeneticModel` (host + slots), `SeedSlot` (lifecycle of one slot),
`fused_validate` (validation with counterfactual contributions), `check_gate`.
"""

from esper.kasmina.alpha import AlphaController, AlphaSchedule, curve_value
from esper.kasmina.blueprints import BLUEPRINTS, build_blueprint, param_count
from esper.kasmina.counterfactual import FusedValidation, fused_validate
from esper.kasmina.errors import BlueprintError, KasminaError, LifecycleError, SlotConfigError
from esper.kasmina.gates import check_gate
from esper.kasmina.host import CNNHost, MorphogeneticModel
from esper.kasmina.slot import DEFAULT_SCHEDULE, SeedSlot
from esper.kasmina.state import (
    GateEvaluation,
    GradientStats,
    Initiator,
    SeedState,
    SlotUpdate,
    StageTransition,
)

__all__ = [
    "AlphaController", "AlphaSchedule", "curve_value", "BLUEPRINTS", "build_blueprint",
    "param_count", "FusedValidation", "fused_validate", "BlueprintError", "KasminaError",
    "LifecycleError", "SlotConfigError", "check_gate", "CNNHost", "MorphogeneticModel",
    "DEFAULT_SCHEDULE", "SeedSlot", "GateEvaluation", "GradientStats", "Initiator", "SeedState",
    "SlotUpdate", "StageTransition",
]
