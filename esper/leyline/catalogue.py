"""The TELE catalogue: every telemetry field any core event or probe emits
(docs/architecture.md §6).

A field is addressed by its event type and a path into the payload: dotted attribute names,
with `*` stepping into every item of a tuple (`slots.*.contribution`). Fields share a TELE id
per group (`TELE-340` is the six LSTM-health fields). `conditional` fields only appear when
something happens (a pruning, a rollback, a detected anomaly), so a healthy run may never
observe them; they are expected only where an experiment's `wiring.expect` names them.
A field's `opportunity`, where it has one, is the event (or the condition on an event) that gives
it its chance to be observed: a seed field has one only in a run where a slot held a seed, a field
on SEED_FOSSILIZED only when a seed was fossilised. Without it, the producer running is the chance
(a detector's event is itself the measurement). Expected and never observed is FAIL only when the
opportunity came (registry/wiring.py).
The producer is a probe name, "core" (always on) or "ppo" (on for the learned policies).
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass

from esper.leyline.actions import HEADS
from esper.leyline.events import TelemetryEventType as T
from esper.leyline.stages import LIVE_STAGES

CORE = "core"
PPO = "ppo"


@dataclass(frozen=True)
class Opportunity:
    """What gives a field its chance to be observed: an event of `event_type` with a value at
    payload `path` ("": the event itself), one of `values` when they are given."""

    event_type: T
    meaning: str  # when it comes, e.g. "a seed is fossilised"
    path: str = ""
    values: frozenset[str] = frozenset()


_LIVE_STAGES = frozenset(stage.name for stage in LIVE_STAGES)
SEEDED = Opportunity(T.EPOCH_COMPLETED, "a slot holds a seed", "slots.*.blueprint")
LIVE_SEED = Opportunity(T.EPOCH_COMPLETED, "a slot holds a live seed (its gates are "
                        "checked)", "slots.*.stage", _LIVE_STAGES)
# A prune clears the seed's gradient signals (it has no module left), so only an advance of a
# trained seed (to BLENDING, HOLDING or FOSSILIZED, always from TRAINING, BLENDING or HOLDING)
# carries them.
TRAINED_SEED_MOVED = Opportunity(T.SEED_STAGE_CHANGED, "a seed that has trained advances (to "
                                 "BLENDING, HOLDING or FOSSILIZED)", "to_stage",
                                 frozenset({"BLENDING", "HOLDING", "FOSSILIZED"}))


@dataclass(frozen=True)
class TeleField:
    """One catalogued telemetry field."""

    tele_id: str  # group id, e.g. TELE-340
    name: str  # unique field name, e.g. lstm_h_norm
    event_type: T
    path: str  # into the payload: "a.b", "slots.*.alpha"
    probe: str  # the probe that produces it, or "core"
    meaning: str
    conditional: bool = False  # emitted only when something happens (see module docstring)
    opportunity: Opportunity | None = None  # None: the producer running is its chance

    @property
    def label(self) -> str:
        """How the field is named to people and in baselines: "TELE-340 lstm_h_norm"."""
        return field_label(self.tele_id, self.name)


def field_label(tele_id: str, name: str) -> str:
    """"<TELE id> <field name>", the one spelling of a field in reports and baselines."""
    return f"{tele_id} {name}"


def _group(tele_id: str, probe: str, event_type: T, fields: dict[str, str], *,
           prefix: str = "", conditional: bool = False,
           opportunity: Opportunity | None = None) -> list[TeleField]:
    """Fields of one group; `fields` maps the payload path to its meaning."""
    return [TeleField(tele_id, (prefix + path).replace(".*.", "_").replace(".", "_"), event_type,
                      path, probe, meaning, conditional, opportunity)
            for path, meaning in fields.items()]


CATALOGUE: tuple[TeleField, ...] = tuple([
    *_group("TELE-100", CORE, T.TRAINING_STARTED, {
        "experiment": "experiment name", "seed": "master seed", "envs": "environments",
        "batches": "PPO batches planned", "episode_length": "epochs per episode",
        "policy": "policy type", "probes": "probes switched on",
        "stacked": "the envs step as one stacked computation"}, prefix="start_"),
    *_group("TELE-110", CORE, T.EPOCH_COMPLETED, {
        "train_loss": "host training loss of the epoch", "train_accuracy": "training accuracy, %",
        "val_loss": "validation loss", "val_accuracy": "validation accuracy, %",
        "committed_accuracy": "validation accuracy of the committed model (fossilised seeds on, "
                              "live seeds off), %",
        "host_accuracy": "validation accuracy with every seed off, %",
        "seeds_live": "seeds germinated and not yet fossilized or pruned",
        "seeds_fossilized": "fossilized seeds", "action": "op the policy chose",
        "action_success": "the chosen action happened", "reward": "the step's reward"}),
    *_group("TELE-114", CORE, T.EPOCH_COMPLETED, {
        "reference_accuracy": "validation accuracy of the reference host (the host trained alone "
                              "on the same batches; reward mode escrow), %"}, conditional=True),
    *_group("TELE-131", CORE, T.EPISODE_OUTCOME, {
        "reference_accuracy": "the reference host's accuracy at the episode's end (reward mode "
                              "escrow), %"}, prefix="episode_", conditional=True),
    *_group("TELE-111", CORE, T.EPOCH_COMPLETED, {
        "slots.*.slot_id": "slot id", "slots.*.stage": "stage of each slot",
        "slots.*.alpha": "blend weight of each slot"}),
    *_group("TELE-113", CORE, T.EPOCH_COMPLETED, {
        "slots.*.blueprint": "blueprint of each slot's seed",
        "slots.*.contribution": "counterfactual contribution of each slot, points",
        "action_slot": "slot the action was taken on"}, conditional=True),
    *_group("TELE-112", CORE, T.EPOCH_COMPLETED, {
        f"reward_components.{term}": f"reward term: {term.replace('_', ' ')}"
        for term in ("attribution", "escrow", "stage_shaping", "param_rent", "action_cost",
                     "fossilize", "holding", "terminal", "governor")}),
    *_group("TELE-120", CORE, T.BATCH_COMPLETED, {
        "mean_val_accuracy": "mean final validation accuracy of the batch's episodes",
        "mean_episode_return": "mean episode return of the batch", "episodes": "episodes",
        "mean_committed_accuracy": "mean committed accuracy at the batch's episodes' ends, %",
        "mean_host_accuracy": "mean host-only accuracy at the batch's episodes' ends, %"},
        prefix="batch_"),
    *_group("TELE-130", CORE, T.EPISODE_OUTCOME, {
        "final_accuracy": "validation accuracy at the end of the episode",
        "param_ratio": "(host + fossilized seed params) / host params",
        "seeds_germinated": "seeds germinated in the episode",
        "seeds_fossilized": "seeds fossilized in the episode",
        "seeds_pruned": "seeds pruned in the episode", "episode_reward": "episode return",
        "committed_accuracy": "accuracy of the model kept at the episode's end (fossilised "
                              "seeds on, live seeds off), %",
        "host_accuracy": "accuracy at the episode's end with every seed off, %"},
        prefix="episode_"),
    *_group("TELE-140", CORE, T.SEED_GERMINATED, {
        "blueprint": "blueprint of the new seed", "params": "its trainable parameters",
        "alpha_style": "its blend algorithm and curve"}, prefix="germinated_", conditional=True,
        opportunity=Opportunity(T.SEED_GERMINATED, "a seed germinates")),
    *_group("TELE-141", CORE, T.SEED_STAGE_CHANGED, {
        "from_stage": "stage left", "to_stage": "stage entered"}, conditional=True,
        opportunity=Opportunity(T.SEED_STAGE_CHANGED, "a seed changes stage")),
    *_group("TELE-142", CORE, T.SEED_FOSSILIZED, {
        "blueprint": "blueprint", "params": "parameters made permanent",
        "contribution": "counterfactual contribution at fossilization",
        "total_improvement": "accuracy points since germination"}, prefix="fossilized_", conditional=True,
        opportunity=Opportunity(T.SEED_FOSSILIZED, "a seed is fossilised")),
    *_group("TELE-143", CORE, T.SEED_PRUNED, {
        "blueprint": "blueprint", "reason": "why", "initiator": "policy, governor, ...",
        "total_improvement": "accuracy points since germination"}, prefix="pruned_", conditional=True,
        opportunity=Opportunity(T.SEED_PRUNED, "a seed is pruned")),
    *_group("TELE-150", CORE, T.GOVERNOR_ROLLBACK, {
        "reason": "nan_loss, lobotomy or divergence", "val_loss": "the loss that triggered it",
        "seeds_pruned": "live seeds pruned by the rollback"}, prefix="rollback_", conditional=True,
        opportunity=Opportunity(T.GOVERNOR_ROLLBACK, "the governor rolls back")),
    *_group("TELE-160", CORE, T.RUN_FINISHED, {
        "status": "how the run ended", "events_emitted": "events emitted before the end",
        "events_dropped": "events a sink never got"}, prefix="run_"),
    *_group("TELE-300", PPO, T.PPO_UPDATE_COMPLETED, {
        name: f"PPO update: {name.replace('_', ' ')}" for name in (
            "policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction",
            "explained_variance", "ratio_mean", "ratio_min", "ratio_max", "ratio_std",
            "pre_clip_grad_norm", "advantage_mean", "advantage_std", "return_mean",
            "return_std", "entropy_coef", "epochs_completed", "early_stopped",
            "update_time_ms")}, prefix="ppo_"),
    *_group("TELE-301", PPO, T.PPO_UPDATE_COMPLETED, {
        f"{stat}.op": f"PPO update: {stat.replace('_', ' ')} of the op head"
        for stat in ("entropy_per_head", "ratio_max_per_head")}, prefix="ppo_"),
    # Every op needs the op head; the others are measured only in an update whose batch
    # holds an op that needs them (alpha_speed: SET_ALPHA_TARGET or PRUNE).
    *_group("TELE-301", PPO, T.PPO_UPDATE_COMPLETED, {
        f"{stat}.{head}": f"PPO update: {stat.replace('_', ' ')} of the {head} head"
        for stat in ("entropy_per_head", "ratio_max_per_head") for head in HEADS[1:]},
        prefix="ppo_", conditional=True),
    *_group("TELE-340", "lstm_health", T.PPO_UPDATE_COMPLETED, {
        "lstm_h_norm": "mean L2 norm of the LSTM h during the update",
        "lstm_c_norm": "mean L2 norm of the LSTM c during the update",
        "lstm_h_max": "max |h| during the update", "lstm_c_max": "max |c| during the update",
        "lstm_has_nan": "NaN in the LSTM state", "lstm_has_inf": "Inf in the LSTM state"}),
    *_group("TELE-341", "lstm_health", T.LSTM_HEALTH_WARNING, {
        "h_norm": "L2 norm of an env's h", "c_norm": "L2 norm of its c",
        "has_nan": "NaN in it", "has_inf": "Inf in it", "reason": "why it is unhealthy"},
        prefix="lstm_warning_", conditional=True),
    *_group("TELE-350", "head_grad_norms", T.PPO_UPDATE_COMPLETED, {
        f"head_{head}_grad_norm": f"gradient L2 norm of the {head} head"
        for head in (*HEADS, "value")}),
    *_group("TELE-360", "gradient_drift", T.PPO_UPDATE_COMPLETED, {
        "gradient_norm_drift": "drift of the policy gradient norm from its EMA",
        "gradient_health_drift": "drift of the policy gradient health from its EMA"}),
    *_group("TELE-361", "gradient_drift", T.GRADIENT_PATHOLOGY_DETECTED, {
        "anomaly_type": "gradient_norm_drift or gradient_health_drift", "detail": "text",
        "value": "this update's value", "ema": "running average before it",
        "drift": "|value - ema| / (ema + eps)", "threshold": "drift threshold"},
        prefix="pathology_", conditional=True),
    *[f for i, (kind, event_type) in enumerate((
        ("explosion", T.RATIO_EXPLOSION_DETECTED), ("collapse", T.RATIO_COLLAPSE_DETECTED),
        ("value", T.VALUE_COLLAPSE_DETECTED), ("numerical", T.NUMERICAL_INSTABILITY_DETECTED)))
      for f in _group(f"TELE-37{i}", "anomalies", event_type, {
          name: f"PPO anomaly ({kind}): {name.replace('_', ' ')}" for name in (
              "anomaly_type", "detail", "ratio_max", "ratio_min", "explained_variance",
              "approx_kl", "clip_fraction", "entropy")}, prefix=f"anomaly_{kind}_",
          conditional=True)],
    *[f for i, (kind, event_type) in enumerate((
        ("plateau", T.PLATEAU_DETECTED), ("degradation", T.DEGRADATION_DETECTED),
        ("improvement", T.IMPROVEMENT_DETECTED)))
      for f in _group(f"TELE-40{i}", "trends", event_type, {
          "delta": "recent minus older window mean accuracy, points",
          "recent_mean": "recent window mean accuracy", "older_mean": "older window mean",
          "window": "epochs per window", "threshold": "the option compared against"},
          prefix=f"trend_{kind}_", conditional=True)],
    *_group("TELE-403", "trends", T.TAMIYO_INITIATED, {
        "val_loss": "val loss when the host stabilised", "val_accuracy": "val accuracy then",
        "stable_epochs": "steady epochs that made it stable",
        "stabilisation_epochs": "steady epochs a host needs (signals.stabilisation_epochs)"},
        prefix="initiated_",
        conditional=True),
    *_group("TELE-430", "seed_telemetry", T.EPOCH_COMPLETED, {
        f"slots.*.telemetry.{name}": f"seed telemetry: {name.replace('_', ' ')}" for name in (
            "seed_id", "blueprint", "stage", "epochs_in_stage", "alpha", "accuracy",
            "accuracy_delta", "epoch", "max_epochs", "gradient_norm", "gradient_health",
            "has_vanishing", "has_exploding", "captured_at")}, opportunity=SEEDED),
    *_group("TELE-500", "throughput", T.THROUGHPUT_MEASURED, {
        "dataloader_wait_ms": "time building the epoch's training batches",
        "fps": "env steps per second, 1000 / step_time_ms"}),
    *_group("TELE-510", "cuda_timing", T.THROUGHPUT_MEASURED, {
        "step_time_ms": "wall time of an env step", "clock": "cuda or cpu"}),
    *_group("TELE-530", "diagnostics", T.ANALYTICS_SNAPSHOT, {
        "kind": "snapshot kind", "layers.*.layer": "host layer",
        "layers.*.gradient_norm": "layer gradient norm",
        "layers.*.gradient_health": "layer gradient health",
        "layers.*.has_vanishing": "a vanishing gradient in the layer",
        "layers.*.has_exploding": "an exploding gradient in the layer",
        "classes.*.label": "class", "classes.*.samples": "validation samples of the class",
        "classes.*.accuracy": "val accuracy of the class",
        "train_accuracy": "train accuracy (eval mode, on the epoch's training images)",
        "val_accuracy": "val accuracy", "train_val_gap": "train - val accuracy",
        "red_flags": "plateau, vanishing/exploding gradients, overfitting"},
        prefix="diagnostic_"),
    *_group("TELE-540", "memory", T.BATCH_COMPLETED, {"rss_mb": "process RSS, MiB"}),
    *_group("TELE-541", "memory", T.BATCH_COMPLETED, {
        "cuda_allocated_mb": "CUDA memory allocated, MiB",
        "cuda_reserved_mb": "CUDA memory reserved, MiB"}, conditional=True),
    *_group("TELE-542", "memory", T.MEMORY_WARNING, {
        "rss_mb": "RSS above the threshold", "threshold_mb": "the threshold",
        "cuda_allocated_mb": "CUDA memory allocated"}, prefix="memory_warning_",
        conditional=True),
    *_group("TELE-550", "reward_hacking", T.REWARD_HACKING_SUSPECTED, {
        "slot_id": "slot", "seed_id": "seed", "contribution": "claimed contribution",
        "total_improvement": "actual improvement since germination", "reason": "which rule"},
        prefix="hacking_", conditional=True),
    *_group("TELE-410", "gate_events", T.SEED_GATE_EVALUATED, {
        "gate": "gate checked", "passed": "whether it passed",
        "target_stage": "stage it guards", "checks_passed": "checks that passed",
        "checks_failed": "checks that failed, by name", "message": "the verdict in words"},
        prefix="gate_", opportunity=LIVE_SEED),
    *_group("TELE-420", "slot_health", T.SEED_STAGE_CHANGED, {
        "gradient_health": "seed gradient health at the transition, [0, 1]",
        "has_vanishing": "a seed parameter's gradient vanished",
        "has_exploding": "a seed parameter's gradient exploded",
        "isolation_violations": "host gradients seen flowing from the isolated seed",
        "seed_gradient_norm_ratio": "seed / host gradient norm"}, opportunity=TRAINED_SEED_MOVED),
])

BY_ID: dict[str, tuple[TeleField, ...]] = {}
for _field in CATALOGUE:
    BY_ID[_field.tele_id] = (*BY_ID.get(_field.tele_id, ()), _field)


def payload_paths(cls: type, prefix: str = "") -> list[str]:
    """Every leaf path of a payload class: nested dataclasses and tuples of them expanded."""
    paths = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        inner = [a for a in typing.get_args(hint) if a is not type(None) and a is not Ellipsis]
        if dataclasses.is_dataclass(hint):
            paths += payload_paths(hint, f"{prefix}{f.name}.")
        elif typing.get_origin(hint) is tuple and inner and dataclasses.is_dataclass(inner[0]):
            paths += payload_paths(inner[0], f"{prefix}{f.name}.*.")
        elif len(inner) == 1 and dataclasses.is_dataclass(inner[0]):  # X | None
            paths += payload_paths(inner[0], f"{prefix}{f.name}.")
        else:
            paths.append(prefix + f.name)
    return paths
