"""SeedSlot: one place in the host where a seed germinates, trains, blends, and fossilises or dies.

The slot is the module side of a seed: it builds the seed, blends it into the forward pass,
watches gradient isolation and owns the seed's optimiser. Every lifecycle decision (docs/pipeline.md
section 2) is its torch-free `SeedLifecycle`'s, which returns a typed `SlotUpdate` from every
operation. The slot never emits telemetry.
"""

from __future__ import annotations

import torch
from torch import nn

from esper.kasmina.alpha import AlphaController, AlphaSchedule
from esper.kasmina.blending import BlendGate, Seed, blend
from esper.kasmina.blueprints import build_blueprint, param_count
from esper.kasmina.errors import BlueprintError
from esper.kasmina.lifecycle import DEFAULT_SCHEDULE, SeedLifecycle
from esper.kasmina.optim import SGD
from esper.kasmina.state import GradientStats, Initiator, SeedState, SlotUpdate, StageTransition
from esper.leyline.config import GatesConfig, SlotsConfig
from esper.leyline.stages import ACTIVE_STAGES, AlphaAlgorithm, SeedStage


class SeedSlot(nn.Module):
    """A slot after one host block; identity while it holds no active seed.

    :param slot_id: ``r0c{i}``.
    :param channels: channels of the host activation at the slot.
    :param probe_shape: (C, H, W) of that activation, used to shape-check new blueprints.
    :param grad_clip: gradient-norm clip applied to the seed alone before its optimiser step.
    """

    def __init__(
        self,
        slot_id: str,
        channels: int,
        probe_shape: tuple[int, int, int],
        slots: SlotsConfig,
        gates: GatesConfig,
        grad_clip: float,
    ) -> None:
        super().__init__()
        self.slot_id = slot_id
        self.channels = channels
        self.probe_shape = probe_shape
        self.grad_clip = grad_clip
        self.lifecycle = SeedLifecycle(slot_id, slots, gates)
        self.seed: Seed | None = None
        self.optimizer: SGD | None = None
        # Follows .to(device) and .to(dtype): germinate() builds seeds on the model's device,
        # in its floating dtype.
        self.register_buffer("_device_anchor", torch.empty(0), persistent=False)
        self._isolation_armed = False
        self._isolation_leak: torch.Tensor | None = None  # bool scalar, set by a backward hook

    # ---------------------------------------------------------------- lifecycle views

    @property
    def state(self) -> SeedState | None:
        return self.lifecycle.state

    @property
    def alpha_controller(self) -> AlphaController | None:
        return self.lifecycle.alpha_controller

    @alpha_controller.setter
    def alpha_controller(self, controller: AlphaController | None) -> None:
        self.lifecycle.alpha_controller = controller

    @property
    def stage(self) -> SeedStage:
        return self.lifecycle.stage

    @property
    def is_empty(self) -> bool:
        return self.lifecycle.is_empty

    @property
    def alpha(self) -> float:
        return self.lifecycle.alpha

    @property
    def alpha_target(self) -> float:
        return self.lifecycle.alpha_target

    @property
    def alpha_holding(self) -> bool:
        return self.lifecycle.alpha_holding

    @property
    def is_isolated(self) -> bool:
        return self.lifecycle.is_isolated

    @property
    def cuts_host_gradient(self) -> bool:
        return self.lifecycle.cuts_host_gradient

    @property
    def counterfactual_eligible(self) -> bool:
        return self.lifecycle.counterfactual_eligible

    @property
    def can_prune(self) -> bool:
        return self.lifecycle.can_prune

    # ---------------------------------------------------------------- seed module

    def seed_parameters(self) -> list[nn.Parameter]:
        """The seed's parameters (blueprint and blend gate); empty without a seed."""
        return [] if self.seed is None else list(self.seed.parameters())

    @property
    def seed_param_count(self) -> int:
        return 0 if self.seed is None else param_count(self.seed)

    # ---------------------------------------------------------------- forward

    def _seed_input(self, host: torch.Tensor) -> torch.Tensor:
        """What the seed reads: the detached host activation while isolated."""
        return host.detach() if self.is_isolated else host

    def forward(self, host: torch.Tensor, alpha: torch.Tensor | None = None) -> torch.Tensor:
        """Pass the host activation (N, C, H, W) through the slot.

        :param alpha: optional per-sample alpha override, shape (N,), for the fused
            counterfactual validation; None uses the controller's alpha.
        """
        state = self.state
        if self.seed is None or state is None or state.stage not in ACTIVE_STAGES:
            return host
        x = self._seed_input(host)
        if state.stage is SeedStage.TRAINING:
            if not torch.is_grad_enabled():
                return host  # s - s.detach() is exactly 0: skip the seed's compute
            s = self.seed.blueprint(x)  # (N, C, H, W)
            out = host + (s - s.detach())  # straight-through: equals host, seed gets gradient
            host_factor: float | torch.Tensor = 1.0
        else:
            a: float | torch.Tensor = self.alpha
            if alpha is not None:
                a = alpha.to(host.dtype).view(-1, 1, 1, 1)  # (N, 1, 1, 1)
            s = self.seed.blueprint(x)  # (N, C, H, W)
            gate = None if self.seed.gate is None else self.seed.gate(x)  # (N, 1, 1, 1)
            out, host_factor = blend(state.algorithm, host, x, s, a, gate)
        if self._isolation_armed and self.is_isolated and host.requires_grad:
            self._watch_isolation(host, out, host_factor)
        return out

    def _watch_isolation(
        self, host: torch.Tensor, out: torch.Tensor, host_factor: float | torch.Tensor
    ) -> None:
        """Hooks that flag a leak: host's gradient must be exactly host_factor * grad(out)."""
        captured: dict[str, torch.Tensor] = {}

        def on_out(grad: torch.Tensor) -> None:
            captured["out"] = grad

        def on_host(grad: torch.Tensor) -> None:
            expected = captured["out"] * host_factor
            scale = expected.abs().amax() + 1e-12
            leak = (grad - expected).abs().amax() > 1e-4 * scale
            previous = self._isolation_leak
            self._isolation_leak = leak if previous is None else previous | leak

        out.register_hook(on_out)
        host.register_hook(on_host)

    def arm_isolation_check(self) -> None:
        """Check gradient isolation on the next forward/backward (cheap; one batch)."""
        self._isolation_armed = True

    def collect_isolation_check(self) -> torch.Tensor | None:
        """Disarm and return the leak flag (bool scalar tensor) of the armed backward, if any."""
        leak, self._isolation_leak, self._isolation_armed = self._isolation_leak, None, False
        return leak

    # ---------------------------------------------------------------- lifecycle

    def germinate(
        self,
        blueprint: str,
        seed_id: str,
        *,
        accuracy: float,
        algorithm: AlphaAlgorithm = AlphaAlgorithm.ADD,
        schedule: AlphaSchedule = DEFAULT_SCHEDULE,
    ) -> SlotUpdate:
        """Build `blueprint`, shape-check it, run G0 and move DORMANT -> GERMINATED.

        :param accuracy: the model's current val accuracy (the seed's baseline).
        :param schedule: the alpha ramp used when the seed enters BLENDING.
        Raises:
            LifecycleError: the slot is not empty (a live seed or a cooldown).
            BlueprintError: unknown blueprint, or its output shape differs from its input's.
        """
        self.lifecycle.require_empty()
        anchor = self._device_anchor
        place = {"device": anchor.device, "dtype": anchor.dtype}
        module = build_blueprint(blueprint, self.channels).to(**place)
        probe = torch.randn(2, *self.probe_shape, **place)  # (2, C, H, W)
        with torch.no_grad():
            out = module(probe)
        if out.shape != probe.shape:
            raise BlueprintError(
                f"blueprint {blueprint!r} maps {tuple(probe.shape)} to {tuple(out.shape)} in slot "
                f"{self.slot_id}; seeds must preserve shape"
            )
        gate = BlendGate(self.channels).to(**place) if algorithm is AlphaAlgorithm.GATE else None
        seed = Seed(module, gate)
        update = self.lifecycle.germinate(blueprint, seed_id, accuracy=accuracy, algorithm=algorithm,
                                          schedule=schedule, param_count=param_count(seed))
        if update.ok:
            self.seed = seed
            params = list(seed.parameters())
            slots = self.lifecycle.slots_config
            self.optimizer = (
                SGD(params, lr=slots.seed_lr, momentum=slots.seed_momentum) if params else None
            )
        return update

    def advance(self, initiator: Initiator = "policy") -> SlotUpdate:
        """See `SeedLifecycle.advance`."""
        return self.lifecycle.advance(initiator)

    def fossilize(self, initiator: Initiator = "policy") -> SlotUpdate:
        """See `SeedLifecycle.fossilize`."""
        return self.lifecycle.fossilize(initiator)

    def set_alpha_target(self, schedule: AlphaSchedule, initiator: Initiator = "policy") -> SlotUpdate:
        """See `SeedLifecycle.set_alpha_target`."""
        return self.lifecycle.set_alpha_target(schedule, initiator)

    def prune(self, initiator: Initiator = "policy", reason: str = "pruned") -> SlotUpdate:
        """Remove a live seed now: its module and optimiser go; see `SeedLifecycle.prune`."""
        update = self.lifecycle.prune(initiator, reason)
        self.seed = None
        self.optimizer = None
        return update

    def step_epoch(self) -> SlotUpdate:
        """See `SeedLifecycle.step_epoch`."""
        return self.lifecycle.step_epoch()

    def _transition(self, to_stage: SeedStage, initiator: Initiator, reason: str) -> StageTransition:
        """See `SeedLifecycle.transition` (no gate: for tests of the transition table)."""
        return self.lifecycle.transition(to_stage, initiator, reason)

    # ---------------------------------------------------------------- metrics

    def record_accuracy(self, accuracy: float) -> None:
        """See `SeedLifecycle.record_accuracy`."""
        self.lifecycle.record_accuracy(accuracy)

    def record_contribution(self, contribution: float | None) -> None:
        """See `SeedLifecycle.record_contribution`."""
        self.lifecycle.record_contribution(contribution)

    def record_gradients(self, stats: GradientStats, host_gradient_norm: float | None) -> None:
        """Store a gradient measurement of this slot's seed."""
        self.lifecycle.require_state().record_gradients(stats, host_gradient_norm)

    # ---------------------------------------------------------------- optimisation

    @property
    def is_trainable(self) -> bool:
        """The seed runs in forward and has parameters for its optimiser."""
        return self.optimizer is not None and self.stage in ACTIVE_STAGES

    def zero_grad_seed(self) -> None:
        if self.optimizer is not None:
            self.optimizer.zero_grad()

    def seed_step(self) -> None:
        """Clip the seed's gradient norm to `grad_clip` (separately from the host) and step."""
        if self.is_trainable:
            assert self.optimizer is not None
            torch.nn.utils.clip_grad_norm_(self.seed_parameters(), self.grad_clip)
            self.optimizer.step()
