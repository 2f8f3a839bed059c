"""Lifecycle gates G0-G5 (no G4), as in the table of docs/pipeline.md §2.

Every check has a stable name: a passed check is listed under its name (`gradient_health`), a
failed one under the reason it failed (`gradient_health_not_measured`,
`gradient_health_below_min`). `strict` mode adds the extra checks of G2, G3 and G5.
"""

from __future__ import annotations

from esper.kasmina.alpha import AlphaController
from esper.kasmina.state import SeedState
from esper.leyline.config import GatesConfig
from esper.leyline.stages import GateLevel, GateResult, SeedStage


class _Checks:
    """Collects named check outcomes and the human detail of each failure."""

    def __init__(self) -> None:
        self.passed: list[str] = []
        self.failed: list[str] = []
        self.details: list[str] = []

    def check(self, ok: bool, name: str, failure: str, detail: str = "") -> None:
        if ok:
            self.passed.append(name)
        else:
            self.failed.append(failure)
            self.details.append(f"{failure} ({detail})" if detail else failure)

    def result(self, gate: GateLevel) -> GateResult:
        total = len(self.passed) + len(self.failed)
        passed = not self.failed
        message = f"{gate.name} passed" if passed else f"{gate.name} failed: {'; '.join(self.details)}"
        return GateResult(
            gate=gate,
            passed=passed,
            score=len(self.passed) / total if total else 1.0,
            checks_passed=tuple(self.passed),
            checks_failed=tuple(self.failed),
            message=message,
        )


def _check_health(checks: _Checks, state: SeedState, min_health: float) -> None:
    """Gradient health measured and >= min_health, and no exploding gradient."""
    if state.gradient_health is None:
        checks.check(False, "gradient_health", "gradient_health_not_measured")
    else:
        checks.check(
            state.gradient_health >= min_health,
            "gradient_health",
            "gradient_health_below_min",
            f"{state.gradient_health:.3f} < {min_health}",
        )
    if state.has_exploding is None:
        checks.check(False, "gradients_not_exploding", "gradient_exploding_not_measured")
    else:
        checks.check(not state.has_exploding, "gradients_not_exploding", "gradient_exploding")


def _check_epochs(checks: _Checks, state: SeedState, minimum: int) -> None:
    checks.check(
        state.epochs_in_stage >= minimum,
        "epochs_in_stage",
        "epochs_in_stage_below_min",
        f"{state.epochs_in_stage} < {minimum}",
    )


def check_gate(
    gate: GateLevel, state: SeedState, alpha: AlphaController | None, config: GatesConfig
) -> GateResult:
    """Run `gate` on a seed. `alpha` is the slot's controller (None before blending)."""
    strict = config.mode == "strict"
    checks = _Checks()
    if gate is GateLevel.G0:
        checks.check(bool(state.seed_id), "seed_id_present", "seed_id_missing")
        checks.check(bool(state.blueprint), "blueprint_id_present", "blueprint_id_missing")
    elif gate is GateLevel.G1:
        checks.check(
            state.stage is SeedStage.GERMINATED,
            "stage_is_germinated",
            "stage_not_germinated",
            state.stage.name,
        )
    elif gate is GateLevel.G2:
        g2 = config.G2
        _check_epochs(checks, state, g2.min_training_epochs)
        _check_health(checks, state, g2.min_gradient_health)
        if strict:
            checks.check(
                state.improvement_since_stage_start >= g2.min_improvement,
                "improvement",
                "improvement_below_min",
                f"{state.improvement_since_stage_start:.2f} < {g2.min_improvement}",
            )
            ratio = state.seed_gradient_norm_ratio
            if ratio is None:
                checks.check(False, "gradient_ratio", "gradient_ratio_not_measured")
            else:
                checks.check(
                    ratio >= g2.min_gradient_ratio,
                    "gradient_ratio",
                    "gradient_ratio_below_min",
                    f"{ratio:.3f} < {g2.min_gradient_ratio}",
                )
    elif gate is GateLevel.G3:
        g3 = config.G3
        if alpha is None:
            checks.check(False, "alpha_at_target", "alpha_not_at_target", "no alpha controller")
            checks.check(False, "alpha_holding", "alpha_not_holding")
        else:
            checks.check(
                abs(alpha.alpha - alpha.target) <= g3.alpha_tolerance,
                "alpha_at_target",
                "alpha_not_at_target",
                f"alpha {alpha.alpha:.4f}, target {alpha.target}",
            )
            checks.check(alpha.is_holding, "alpha_holding", "alpha_not_holding")
        if strict:
            _check_epochs(checks, state, g3.min_blending_epochs)
    elif gate is GateLevel.G5:
        contribution = state.counterfactual_contribution
        checks.check(contribution is not None, "contribution_measured", "contribution_not_measured")
        _check_health(checks, state, config.G2.min_gradient_health)
        if strict and contribution is not None:
            checks.check(
                contribution >= config.G5.min_contribution,
                "contribution",
                "contribution_below_min",
                f"{contribution:.2f} < {config.G5.min_contribution}",
            )
        elif strict:
            checks.check(False, "contribution", "contribution_below_min", "not measured")
    else:  # pragma: no cover - GateLevel is closed
        raise ValueError(f"unknown gate {gate!r}")
    return checks.result(gate)
