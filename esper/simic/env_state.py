"""One env's episode: its model, optimiser, governor, signals and running tallies."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch

from esper.kasmina.host import MorphogeneticModel
from esper.kasmina.optim import Optimizer
from esper.leyline.actions import Op
from esper.leyline.config import ExperimentSpec
from esper.leyline.seed_telemetry import SeedTelemetry
from esper.leyline.stages import SeedStage
from esper.simic.escrow import CreditEscrow
from esper.simic.rewards import real_gain, slot_potential
from esper.tamiyo.observation import EnvObservation, SlotView
from esper.tamiyo.signal_tracker import SignalTracker
from esper.tolaria.datasets import TaskData
from esper.tolaria.governor import Governor
from esper.tolaria.host_step import EpochResult, build_host_optimizer


@dataclass
class ReferenceHost:
    """A copy of an env's fresh host trained alone (never a seed) on the same batches: what the
    host would reach without growth, against which reward mode escrow measures real gain."""

    model: MorphogeneticModel
    optimizer: Optimizer
    accuracy: float | None = None  # of its last validation, percent; None before the first


@dataclass
class EnvState:
    """Everything one env carries from epoch to epoch within an episode."""

    env_id: int
    model: MorphogeneticModel
    host_optimizer: Optimizer
    governor: Governor
    signals: SignalTracker
    blueprints: tuple[str, ...]
    last_op: Op = Op.WAIT
    last_success: bool = True
    episode_return: float = 0.0
    seeds_fossilized: int = 0
    seeds_pruned: int = 0
    last_result: EpochResult | None = field(default=None, repr=False)
    # The model changed after `last_result` was measured (a fossilisation, a rollback).
    validated_model_changed: bool = False
    escrow: CreditEscrow = field(default_factory=CreditEscrow, repr=False)  # reward mode escrow
    reference: ReferenceHost | None = field(default=None, repr=False)  # reward mode escrow
    # seed_telemetry probe: slot id -> its seed's last snapshot; None: the probe is off.
    seed_telemetry: dict[str, SeedTelemetry] | None = field(default=None, repr=False)

    @classmethod
    def fresh(cls, env_id: int, spec: ExperimentSpec, data: TaskData,
              device: torch.device) -> EnvState:
        """A new host for a new episode, snapshotted at epoch 0."""
        model = MorphogeneticModel(spec.host, spec.slots, spec.gates,
                                   image_shape=data.image_shape,
                                   num_classes=data.num_classes).to(device)
        optimizer = build_host_optimizer(model, spec.host)
        governor = Governor(data.num_classes)
        governor.snapshot(model, optimizer, 0)
        reference = None
        if spec.reward.trains_reference_host:
            twin = copy.deepcopy(model)  # the same initial weights, no RNG drawn
            reference = ReferenceHost(twin, build_host_optimizer(twin, spec.host))
        return cls(env_id, model, optimizer, governor, SignalTracker(spec.signals),
                   spec.blueprints, reference=reference)

    @property
    def potential(self) -> float:
        """Summed stage potential of the slots, for potential-based reward shaping."""
        return sum(potential for _, potential in self._slot_potentials())

    @property
    def reference_accuracy(self) -> float | None:
        """The reference host's last validation accuracy (None without one, reward modes other
        than escrow)."""
        return None if self.reference is None else self.reference.accuracy

    @property
    def fossil_potential(self) -> float:
        """The fossilised slots' part of `potential` (what reward mode escrow keeps at the end)."""
        return sum(potential for stage, potential in self._slot_potentials()
                   if stage is SeedStage.FOSSILIZED)

    def _slot_potentials(self) -> Iterator[tuple[SeedStage, float]]:
        for slot in self.model.seed_slots():
            if slot.state is not None:
                yield slot.stage, slot_potential(slot.stage, slot.state.epochs_in_stage)

    def observe(self, epoch: int, episode_length: int) -> EnvObservation:
        """What the policy sees after this epoch's training and validation."""
        result = self.last_result
        assert result is not None, "observe() needs a finished epoch"
        return EnvObservation(
            epoch=epoch, episode_length=episode_length,
            val_loss=result.val_loss, val_accuracy=result.val_accuracy,
            loss_history=tuple(self.signals.losses), accuracy_history=tuple(self.signals.accuracies),
            host_stabilised=self.signals.stabilised, plateau_epochs=self.signals.plateau_epochs,
            seeds_germinated=self.model.seeds_germinated, max_seeds=self.model.max_seeds,
            last_op=self.last_op, last_success=self.last_success,
            slots=tuple(self._slot_view(slot) for slot in self.model.seed_slots()),
            seed_telemetry=self.seed_telemetry is not None,
            committed_accuracy=result.committed_accuracy,
            real_gain=real_gain(result.val_accuracy, self.reference_accuracy),
        )

    def _slot_view(self, slot) -> SlotView:
        state = slot.state
        if state is None:
            return SlotView(
                slot_id=slot.slot_id, stage=None, blueprint_index=None, alpha=0.0,
                alpha_target=0.0, alpha_holding=False, epochs_in_stage=0, seed_age=0,
                improvement_since_stage_start=0.0, total_improvement=0.0, contribution=None,
                contribution_velocity=None, gradient_norm=None, gradient_health=None,
                has_vanishing=None, has_exploding=None)
        return SlotView(
            slot_id=slot.slot_id, stage=state.stage,
            blueprint_index=self.blueprints.index(state.blueprint),
            alpha=slot.alpha, alpha_target=slot.alpha_target, alpha_holding=slot.alpha_holding,
            epochs_in_stage=state.epochs_in_stage, seed_age=state.epochs_total,
            improvement_since_stage_start=state.improvement_since_stage_start,
            total_improvement=state.total_improvement,
            contribution=state.counterfactual_contribution,
            contribution_velocity=state.contribution_velocity,
            gradient_norm=state.gradient_norm, gradient_health=state.gradient_health,
            has_vanishing=state.has_vanishing, has_exploding=state.has_exploding,
            telemetry=(None if self.seed_telemetry is None
                       else self.seed_telemetry.get(slot.slot_id)))

    def contributing_fossils(self) -> int:
        """Fossilized seeds whose last measured contribution was at least one point."""
        return sum(1 for slot in self.model.seed_slots()
                   if slot.stage is SeedStage.FOSSILIZED and slot.state is not None
                   and (slot.state.counterfactual_contribution or 0.0) >= 1.0)
