"""The env loop: `training.envs` episodes side by side, `training.batches` times.

Per epoch, every env trains its host for one epoch and validates it (fused with the
counterfactuals; with `training.batch_envs`, all envs as one stacked computation), the governor
checks it, and then the policy chooses one action per env.
The action is executed, the slots step their epoch, the reward is computed on the state
before the action, and the epoch is recorded. Data is loaded once and shared by the envs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from esper.kasmina.stacked import StackedModels
from esper.kasmina.state import SlotUpdate
from esper.leyline.actions import FactoredAction, Op
from esper.leyline.config import ExperimentSpec
from esper.leyline.emitter import Emitter, replay
from esper.leyline.events import (BatchCompletedPayload, EpisodeOutcomePayload,
                                  EpochCompletedPayload, GovernorRollbackPayload, Severity,
                                  SlotSummary, TelemetryEventType, TrainingStartedPayload)
from esper.leyline.rewards import RewardComponents
from esper.leyline.stages import LIVE_STAGES, SeedStage
from esper.simic.action_executor import ActionOutcome, execute
from esper.simic.env_state import EnvState
from esper.simic.lifecycle_events import LifecycleReporter, StepContext
from esper.simic.probes.env_probes import EnvProbes
from esper.simic.rewards import RewardInputs, SeedCredit, compute_reward, escrow_targets
from esper.tamiyo.observation import EnvObservation
from esper.tamiyo.policy import Policy
from esper.tolaria.allocator import reuse_freed_memory
from esper.tolaria.datasets import TaskData
from esper.tolaria.host_step import EpochResult, run_epoch, validate
from esper.tolaria.stacked_step import can_stack, run_epoch_stacked, stacks_envs



@dataclass(frozen=True)
class TrainingSummary:
    """What a finished env loop did."""

    final_accuracy: tuple[float, ...]  # per env, at the end of the last episode, percent
    final_committed_accuracy: tuple[float, ...]  # per env, the kept model (fossils only), percent
    final_host_accuracy: tuple[float, ...]  # per env, every seed off, percent
    mean_episode_return: float  # over the last batch's envs
    seeds_germinated: int
    seeds_fossilized: int
    seeds_pruned: int
    env_epochs: int  # host epochs trained, summed over envs
    artifacts: dict[str, Path]  # artifact name -> file the probes wrote (profiler traces)


class EnvLoop:
    """Runs the episodes of one experiment and reports them through `hub`.

    :param artifact_dir: where the run keeps its files (`runner.artifact_dir`); None when
        nothing is kept (the `profiler` probe needs it).
    """

    def __init__(self, spec: ExperimentSpec, data: TaskData, policy: Policy, hub: Emitter,
                 device: torch.device, artifact_dir: Path | None = None) -> None:
        self.spec, self.data, self.policy, self.hub, self.device = spec, data, policy, hub, device
        self.probes = EnvProbes(spec, data, hub, device, artifact_dir)
        self.schedule = self.probes.schedule  # the shared batch order (timed by `throughput`)
        self.reporter = LifecycleReporter(hub, spec.telemetry)
        self.tallies = {SeedStage.GERMINATED: 0, SeedStage.FOSSILIZED: 0, SeedStage.PRUNED: 0}
        self.env_epochs = 0
        self.stacked = (stacks_envs(spec.training, spec.host, data.image_shape, device)
                        and can_stack(self.schedule))

    def run(self) -> TrainingSummary:
        """Train every batch of episodes; returns the summary of the last one."""
        spec = self.spec
        self.hub.emit(TelemetryEventType.TRAINING_STARTED, TrainingStartedPayload(
            experiment=spec.name, seed=spec.seed, envs=spec.training.envs,
            batches=spec.training.batches, episode_length=spec.training.episode_length,
            policy=spec.policy.type, probes=spec.telemetry.probes, stacked=self.stacked))
        outcomes: list[EpisodeOutcomePayload] = []
        if self.stacked:
            reuse_freed_memory()
        self.probes.run_started()
        try:
            for batch in range(spec.training.batches):
                outcomes = self._run_episode(batch)
        finally:
            artifacts = self.probes.run_finished()
        return TrainingSummary(
            final_accuracy=tuple(o.final_accuracy for o in outcomes),
            final_committed_accuracy=tuple(o.committed_accuracy for o in outcomes),
            final_host_accuracy=tuple(o.host_accuracy for o in outcomes),
            mean_episode_return=sum(o.episode_reward for o in outcomes) / len(outcomes),
            seeds_germinated=self.tallies[SeedStage.GERMINATED],
            seeds_fossilized=self.tallies[SeedStage.FOSSILIZED],
            seeds_pruned=self.tallies[SeedStage.PRUNED],
            env_epochs=self.env_epochs,
            artifacts=artifacts,
        )

    def _run_episode(self, batch: int) -> list[EpisodeOutcomePayload]:
        spec, length = self.spec, self.spec.training.episode_length
        envs = [EnvState.fresh(e, spec, self.data, self.device) for e in range(spec.training.envs)]
        stack = self._stack(envs)
        self.probes.episode_started(envs, stack)
        self.policy.start_episode(len(envs))
        for epoch in range(length):
            rolled_back = self._train_and_validate(envs, stack, batch, epoch)
            observations = [env.observe(epoch, length) for env in envs]
            actions = self.policy.act(observations)
            replay(self.policy.drain_probe_events(), self.hub, batch=batch, epoch=epoch)
            self.policy.record_rewards([
                self._act(env, obs, action, penalised, self._step(batch, env, epoch))
                for env, obs, action, penalised in zip(envs, observations, actions, rolled_back)])
        outcomes = [self._report_episode(env, batch) for env in envs]
        report = self.policy.end_episode([env.observe(length, length) for env in envs], batch)
        if report is not None:
            self.hub.emit(TelemetryEventType.PPO_UPDATE_COMPLETED, report.metrics, batch=batch)
            replay(report.events, self.hub, batch=batch, epoch=None)
        completed = self.probes.batch_fields(BatchCompletedPayload(
            mean_val_accuracy=_mean(o.final_accuracy for o in outcomes),
            mean_episode_return=_mean(o.episode_reward for o in outcomes),
            episodes=len(outcomes),
            mean_committed_accuracy=_mean(o.committed_accuracy for o in outcomes),
            mean_host_accuracy=_mean(o.host_accuracy for o in outcomes)))
        self.hub.emit(TelemetryEventType.BATCH_COMPLETED, completed, batch=batch)
        self.probes.batch_completed(batch, completed)
        return outcomes

    def _stack(self, envs: list[EnvState]) -> StackedModels | None:
        """The envs' models, then their reference hosts if any, stacked for one computation;
        None when the envs step one after another (`stacks_envs`, `can_stack`)."""
        if not self.stacked:
            return None
        return StackedModels([env.model for env in envs]
                             + [env.reference.model for env in envs if env.reference is not None])

    def _train_and_validate(self, envs: list[EnvState], stack: StackedModels | None,
                            batch: int, epoch: int) -> list[bool]:
        """One host epoch of every env (and its reference host), as one stacked computation
        where it can be; per env, True when the governor rolled it back."""
        contexts = [self._step(batch, env, epoch) for env in envs]
        global_epoch = contexts[0].schedule_epoch
        grad_clip = self.spec.host.grad_clip
        if stack is None:
            rolled_back = []
            for env, ctx in zip(envs, contexts):
                self.probes.steps_started([env], [ctx])
                result = run_epoch(env.model, env.host_optimizer, self.data, self.schedule,
                                   global_epoch, env.env_id, grad_clip)
                self._train_reference(env, global_epoch)
                self.probes.steps_finished([env], [ctx])
                rolled_back.append(self._validated(env, ctx, result))
            return rolled_back
        references = [(env.env_id, env.reference) for env in envs if env.reference is not None]
        self.probes.steps_started(envs, contexts)
        results = run_epoch_stacked(
            stack, [env.host_optimizer for env in envs] + [r.optimizer for _, r in references],
            self.data, self.schedule, global_epoch, grad_clip,
            env_ids=[env.env_id for env in envs] + [env_id for env_id, _ in references],
            measured=[True] * len(envs) + [False] * len(references))
        self.probes.steps_finished(envs, contexts)
        for (_, reference), result in zip(references, results[len(envs):]):
            reference.accuracy = result.val_accuracy
        return [self._validated(env, ctx, result)
                for env, ctx, result in zip(envs, contexts, results)]

    def _validated(self, env: EnvState, ctx: StepContext, result: EpochResult) -> bool:
        """Record `env`'s trained and validated epoch, let the governor check it; returns True
        when the governor rolled it back."""
        self.env_epochs += 1
        env.last_result = result
        env.validated_model_changed = False
        for slot in env.model.seed_slots():
            slot.record_accuracy(result.val_accuracy)
            slot.record_contribution(result.contributions.get(slot.slot_id))
        rollback = env.governor.observe(env.model, env.host_optimizer, ctx.epoch + 1,
                                        result.val_loss)
        if rollback is not None:
            env.validated_model_changed = True  # the snapshot replaced the validated model
            self.hub.emit(TelemetryEventType.GOVERNOR_ROLLBACK, GovernorRollbackPayload(
                reason=rollback.reason,
                val_loss=result.val_loss,
                seeds_pruned=len(rollback.pruned)), severity=Severity.WARNING, batch=ctx.batch,
                env_id=env.env_id, epoch=ctx.epoch,
                message=f"rolled back to the snapshot of epoch {rollback.snapshot_epoch}")
            for update in rollback.pruned:
                self._report(update, env, ctx)
        stabilised = env.signals.update(result.val_loss, result.val_accuracy)
        self.probes.epoch_validated(env, ctx, stabilised)
        return rollback is not None

    def _step(self, batch: int, env: EnvState, epoch: int) -> StepContext:
        """The step fields of `env`'s epoch; the schedule's epoch is global: a fresh order
        per epoch of every batch."""
        return StepContext(batch, env.env_id, epoch,
                           batch * self.spec.training.episode_length + epoch)

    def _train_reference(self, env: EnvState, global_epoch: int) -> None:
        """Train and validate the env's reference host, if it has one, on the env's batches."""
        reference = env.reference
        if reference is None:
            return
        result = run_epoch(reference.model, reference.optimizer, self.data, self.schedule,
                           global_epoch, env.env_id, self.spec.host.grad_clip,
                           measure_gradients=False)
        reference.accuracy = result.val_accuracy

    def _act(self, env: EnvState, obs: EnvObservation, action: FactoredAction,
             rolled_back: bool, ctx: StepContext) -> float:
        """Execute `action`, step the epoch, record it; returns the step's reward."""
        state_before = self._reward_inputs(env, obs, action, rolled_back)  # the state before
        fossilized_before = env.seeds_fossilized
        outcome = execute(action, env, obs, self.spec.slots.min_prune_age)
        if outcome.update is not None:
            self._report(outcome.update, env, ctx)
        for update in env.model.step_epoch():
            self._report(update, env, ctx)
        if env.seeds_fossilized > fossilized_before:  # by FOSSILIZE or by G5 in auto_forward:
            # the governor snapshots after each fossilization (docs/pipeline.md §6)
            env.governor.snapshot(env.model, env.host_optimizer, ctx.epoch + 1)
            env.validated_model_changed = True  # the committed model grew
        reward = compute_reward(self.spec.reward, self.spec.ppo, replace(
            state_before, potential_after=env.potential,
            fossil_potential_after=env.fossil_potential,
            escrow=(self._settle_escrow(env, state_before)
                    if self.spec.reward.mode == "escrow" else 0.0)))  # only escrow pays it
        env.episode_return += reward.total
        env.last_op, env.last_success = outcome.executed, outcome.success
        self._report_epoch(env, obs, action, outcome, reward, ctx)
        return reward.total

    def _reward_inputs(self, env: EnvState, obs: EnvObservation, action: FactoredAction,
                       rolled_back: bool) -> RewardInputs:
        """The reward's inputs in the state before `action` (docs/pipeline.md §6); the
        potential after it is filled in once the action and the epoch step are done."""
        target = obs.slots[action.slot] if action.op is not Op.WAIT else None
        model, result = env.model, env.last_result
        assert result is not None
        decided = action.op in (Op.FOSSILIZE, Op.PRUNE) and target is not None \
            and target.stage is SeedStage.HOLDING
        return RewardInputs(
            op=action.op,
            target_stage=None if target is None else target.stage,
            target_contribution=None if target is None else target.contribution,
            potential_before=env.potential,
            potential_after=env.potential,
            fossil_potential_after=env.fossil_potential,
            holding_undecided=obs.count(SeedStage.HOLDING) - decided,
            escrow=0.0,
            credits=tuple(SeedCredit(slot.state.seed_id, view.contribution, view.total_improvement)
                          for view, slot in zip(obs.slots, model.seed_slots())
                          if view.contribution is not None and view.stage in LIVE_STAGES
                          and slot.state is not None),
            total_improvement=result.val_accuracy - result.host_accuracy,
            committed_accuracy=result.committed_accuracy,
            reference_accuracy=env.reference_accuracy,
            params_added=model.seed_param_count,
            host_params=model.host_param_count,
            val_accuracy=obs.val_accuracy,
            last_epoch=obs.epoch == obs.episode_length - 1,
            contributing_fossils=env.contributing_fossils(),
            fossil_params=model.fossilized_param_count,
            rolled_back=rolled_back,
        )

    @staticmethod
    def _settle_escrow(env: EnvState, state_before: RewardInputs) -> float:
        """The escrow's reward for this step, after the action and the epoch step: live seeds
        are paid their new targets, fossils keep their credit, every other seed's (pruned, or
        live at the episode's end) is taken back."""
        seeds = {slot.state.seed_id: slot.stage for slot in env.model.seed_slots()
                 if slot.state is not None}
        live = [] if state_before.last_epoch else [s for s, st in seeds.items()
                                                   if st in LIVE_STAGES]
        kept = [s for s, stage in seeds.items() if stage is SeedStage.FOSSILIZED]
        return env.escrow.settle(
            escrow_targets(state_before.credits, state_before.real_gain), live, kept)

    def _report(self, update: SlotUpdate, env: EnvState, ctx: StepContext) -> None:
        self.reporter.report(update, env.model, ctx)
        for transition in update.transitions:
            if transition.to_stage in self.tallies:
                self.tallies[transition.to_stage] += 1
                if transition.to_stage is SeedStage.FOSSILIZED:
                    env.seeds_fossilized += 1
                elif transition.to_stage is SeedStage.PRUNED:
                    env.seeds_pruned += 1

    def _report_epoch(self, env: EnvState, obs: EnvObservation, action: FactoredAction,
                      outcome: ActionOutcome, reward: RewardComponents, ctx: StepContext) -> None:
        result = env.last_result
        assert result is not None
        blueprints = self.spec.blueprints
        slots = tuple(SlotSummary(
            slot_id=view.slot_id, stage=(view.stage or SeedStage.DORMANT).name,
            blueprint=None if view.blueprint_index is None else blueprints[view.blueprint_index],
            alpha=view.alpha, contribution=view.contribution, telemetry=view.telemetry)
            for view in obs.slots)
        self.hub.emit(TelemetryEventType.EPOCH_COMPLETED, EpochCompletedPayload(
            train_loss=result.train_loss, train_accuracy=result.train_accuracy,
            val_loss=result.val_loss, val_accuracy=result.val_accuracy,
            committed_accuracy=result.committed_accuracy, host_accuracy=result.host_accuracy,
            reference_accuracy=env.reference_accuracy, seeds_live=obs.count(*LIVE_STAGES),
            seeds_fossilized=obs.count(SeedStage.FOSSILIZED),
            slots=slots, action=action.op.name, action_slot=outcome.slot_id,
            action_success=outcome.success, reward=reward.total, reward_components=reward),
            batch=ctx.batch, env_id=ctx.env_id, epoch=ctx.epoch)

    def _report_episode(self, env: EnvState, batch: int) -> EpisodeOutcomePayload:
        model = env.model
        committed, host = self._final_accuracies(env)
        outcome = EpisodeOutcomePayload(
            final_accuracy=env.signals.accuracies[-1],
            param_ratio=(model.host_param_count + model.fossilized_param_count) / model.host_param_count,
            seeds_germinated=model.seeds_germinated, seeds_fossilized=env.seeds_fossilized,
            seeds_pruned=env.seeds_pruned, episode_reward=env.episode_return,
            committed_accuracy=committed, host_accuracy=host,
            reference_accuracy=env.reference_accuracy)
        self.hub.emit(TelemetryEventType.EPISODE_OUTCOME, outcome, batch=batch, env_id=env.env_id)
        return outcome

    def _final_accuracies(self, env: EnvState) -> tuple[float, float]:
        """Committed and host-only accuracy of the model at the episode's end: the last
        validation's, unless the last step fossilised a seed or rolled the model back, in which
        case the final model is validated once more."""
        result = env.last_result
        assert result is not None
        if not env.validated_model_changed:
            return result.committed_accuracy, result.host_accuracy
        final = validate(env.model, self.data, self.schedule.batch_size,
                         self.schedule.val_indices(env.env_id))
        return final.committed_accuracy, final.host_accuracy


def _mean(values: Iterable[float]) -> float:
    items = list(values)
    return sum(items) / len(items)
