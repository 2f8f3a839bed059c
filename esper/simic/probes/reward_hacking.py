"""`reward_hacking` probe: a seed whose counterfactual contribution claims more than the model
gained since the seed germinated.

After every validation, for each seed whose contribution was measured this epoch (c, accuracy
points the model loses with the seed's alpha at 0) against its total improvement t (accuracy
points since germination), REWARD_HACKING_SUSPECTED is emitted when
- contribution_ratio: t > 0 and c >= reward_hacking.contribution_ratio x t (the seed takes
  credit for several times what the model gained). With t <= 0 any positive c would pass this
  test; that regime is the next one's;
- degradation: c > reward_hacking.min_contribution while t < max_total_improvement (the model
  got worse since germination, yet cannot do without the seed: the host came to depend on it).
"""

from __future__ import annotations

from esper.leyline.config import RewardHackingOptions
from esper.leyline.emitter import Emitter
from esper.leyline.events import RewardHackingPayload, Severity, TelemetryEventType
from esper.simic.env_state import EnvState
from esper.simic.lifecycle_events import StepContext


def suspicion(options: RewardHackingOptions, contribution: float,
              total_improvement: float) -> str | None:
    """The reason a (contribution, total improvement) pair is suspicious, or None."""
    if total_improvement > 0 and contribution >= options.contribution_ratio * total_improvement:
        return "contribution_ratio"
    degrading = total_improvement < options.max_total_improvement
    if degrading and contribution > options.min_contribution:
        return "degradation"
    return None


class RewardHackingProbe:
    """Checks every measured contribution of every env, every epoch."""

    def __init__(self, options: RewardHackingOptions, hub: Emitter) -> None:
        self.options, self.hub = options, hub

    def epoch_validated(self, env: EnvState, ctx: StepContext, stabilised: bool) -> None:
        result = env.last_result
        assert result is not None
        for slot_id, contribution in result.contributions.items():
            state = env.model.slot(slot_id).state
            if contribution is None or state is None:
                continue  # not measured (no alpha yet), or the slot was emptied since
            reason = suspicion(self.options, contribution, state.total_improvement)
            if reason is None:
                continue
            self.hub.emit(TelemetryEventType.REWARD_HACKING_SUSPECTED, RewardHackingPayload(
                slot_id=slot_id, seed_id=state.seed_id, contribution=contribution,
                total_improvement=state.total_improvement, reason=reason),
                severity=Severity.WARNING, batch=ctx.batch, env_id=ctx.env_id, epoch=ctx.epoch,
                seed_id=state.seed_id, slot_id=slot_id,
                message=f"{state.seed_id}: contribution {contribution:+.2f} vs total improvement "
                        f"{state.total_improvement:+.2f} ({reason})")
