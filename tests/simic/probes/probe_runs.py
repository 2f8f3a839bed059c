"""Small real runs and real policies for the probe tests: a digits subset, 2 envs x 4 epochs x
2 batches, hidden 16, recorded to a runs.db in a temporary directory (MLflow off)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from esper.experiment.runner import RunResult, run
from esper.leyline.actions import Op
from esper.leyline.config import ExperimentSpec
from esper.leyline.events import PPOUpdatePayload, TelemetryEvent, TelemetryEventType
from esper.registry import Registry
from esper.simic.ppo_policy import PPOPolicy
from esper.tamiyo.observation import EnvObservation, SlotView
from esper.tamiyo.policy import UpdateReport
from tests.spec_factory import tiny_spec

T = TelemetryEventType
PPO_PROBES = ("lstm_health", "head_grad_norms", "gradient_drift", "anomalies")
LSTM_FIELDS = ("lstm_h_norm", "lstm_c_norm", "lstm_h_max", "lstm_c_max", "lstm_has_nan",
               "lstm_has_inf")
HEAD_FIELDS = tuple(f"head_{name}_grad_norm" for name in (
    "op", "slot", "blueprint", "style", "tempo", "alpha_target", "alpha_speed", "alpha_curve",
    "value"))
DRIFT_FIELDS = ("gradient_norm_drift", "gradient_health_drift")
PROBE_EVENTS = (T.LSTM_HEALTH_WARNING, T.GRADIENT_PATHOLOGY_DETECTED, T.RATIO_EXPLOSION_DETECTED,
                T.RATIO_COLLAPSE_DETECTED, T.VALUE_COLLAPSE_DETECTED,
                T.NUMERICAL_INSTABILITY_DETECTED)


def probe_spec(policy: str = "lstm", probes: tuple[str, ...] = (), *,
               ppo: dict[str, Any] | None = None, training: dict[str, Any] | None = None,
               reward: dict[str, Any] | None = None, **options: Any) -> ExperimentSpec:
    """A small experiment with `probes` on; `training` replaces keys of the training section,
    `reward` is the reward section, `options` are telemetry sections (lstm_health=...)."""
    return tiny_spec(
        task={"dataset": "digits", "max_train": 128, "max_val": 64, "batch_size": 64},
        policy={"type": policy, "feature_dim": 16, "hidden_dim": 16},
        training={"envs": 2, "batches": 2, "episode_length": 4, **(training or {})},
        ppo=ppo or {},
        reward=reward or {},
        telemetry={"probes": list(probes), **options},
        tracking={"mlflow": False},
    )


class Recorded:
    """A finished run and every event it recorded, read back from runs.db."""

    def __init__(self, spec: ExperimentSpec, path: Path) -> None:
        self.spec = spec
        self.result: RunResult = run(spec, registry=path)
        with Registry.open(path) as registry:
            self.events: list[TelemetryEvent] = list(registry.events(self.result.record.run_id))
            self.artifacts = registry.artifacts(self.result.record.run_id)

    def of(self, *types: TelemetryEventType) -> list[TelemetryEvent]:
        return [e for e in self.events if e.event_type in types]

    @property
    def updates(self) -> list[PPOUpdatePayload]:
        return [e.data for e in self.of(T.PPO_UPDATE_COMPLETED)]


def observations(spec: ExperimentSpec, epoch: int, *, can_germinate: bool = True,
                 n_envs: int = 2) -> list[EnvObservation]:
    """What the policy sees of hosts with empty slots at `epoch`; with `can_germinate` False the
    seed budget is spent, so WAIT is the only possible op."""
    slots = tuple(SlotView(
        slot_id=slot_id, stage=None, blueprint_index=None, alpha=0.0, alpha_target=0.0,
        alpha_holding=False, epochs_in_stage=0, seed_age=0, improvement_since_stage_start=0.0,
        total_improvement=0.0, contribution=None, contribution_velocity=None,
        gradient_norm=None, gradient_health=None, has_vanishing=None, has_exploding=None)
        for slot_id in spec.slots.enabled)
    return [EnvObservation(
        epoch=epoch, episode_length=spec.training.episode_length,
        val_loss=2.3 - 0.2 * epoch - 0.05 * env, val_accuracy=10.0 + 8 * epoch + env,
        loss_history=(2.3 - 0.2 * epoch,), accuracy_history=(10.0 + 8 * epoch,),
        host_stabilised=epoch > 1, plateau_epochs=0,
        seeds_germinated=0 if can_germinate else spec.slots.max_seeds,
        max_seeds=spec.slots.max_seeds, last_op=Op.WAIT, last_success=True, slots=slots)
        for env in range(n_envs)]


def rollout(policy: PPOPolicy, spec: ExperimentSpec, rewards: list[float], *,
            can_germinate: bool = True) -> UpdateReport:
    """One episode of the real policy on `observations`, every step rewarded with `rewards`
    (one per env), then its PPO update."""
    length = spec.training.episode_length
    for epoch in range(length):
        policy.act(observations(spec, epoch, can_germinate=can_germinate, n_envs=len(rewards)))
        policy.record_rewards(rewards)
    return policy.end_episode(
        observations(spec, length, can_germinate=can_germinate, n_envs=len(rewards)), batch=0)
