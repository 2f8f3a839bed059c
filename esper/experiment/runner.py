"""Run an experiment: compile it, record it in the registry, train, and summarise."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from esper.experiment.compile import Pipeline, compile_spec
from esper.experiment.spec_builder import spec_to_dict
from esper.leyline.catalogue import BY_ID, CORE, PPO
from esper.leyline.config import ExperimentSpec
from esper.nissa.hub import Sink
from esper.nissa.recording import Recording, recording
from esper.registry import NewRun, Registry, RunRecord
from esper.registry.deletion import artifact_root
from esper.registry.refs import check_name
from esper.registry.wiring import FAILING, WiringOutcome, evaluate_run, producers
from esper.simic.env_loop import EnvLoop, TrainingSummary
from esper.simic.ppo_policy import PPOPolicy
from esper.tamiyo.policy import Policy

if TYPE_CHECKING:  # mlflow is imported only by runs that record to it
    from esper.nissa.mlflow_store import MlflowStore

log = logging.getLogger(__name__)

TAG_EVALUATION = "esper.evaluation"  # "true" on a frozen evaluation (policy.train false)
TAG_EVALUATED_CHECKPOINT = "esper.evaluated_checkpoint"  # the policy.init_from it evaluated


@dataclass(frozen=True)
class RunResult:
    """A finished run: its registry row and what training did."""

    record: RunRecord
    summary: TrainingSummary
    registry_path: Path
    wiring: list[WiringOutcome]  # every catalogue field's outcome
    policy: Policy  # the policy the run acted with, as it ended (a learned one's weights)

    @property
    def wiring_failed(self) -> bool:
        """A field expected but not observed (FAIL), or a declared gap observed (XPASS)."""
        return any(o.outcome in FAILING for o in self.wiring)


def run(
    spec: ExperimentSpec,
    *,
    spec_path: str | os.PathLike[str] | None = None,
    name: str | None = None,
    registry: str | os.PathLike[str] | None = None,
    sinks: Sequence[Sink] = (),
    group_id: str | None = None,
) -> RunResult:
    """Train `spec` and record every event of it in the registry, and in MLflow unless
    `spec.tracking.mlflow` is false. `group_id` marks the run as a member of a replicate group
    (see `esper.experiment.replicates`).

    At the end, every catalogue field is judged against the recorded events (wiring status,
    stored in the registry's `wiring` table). Everything that can fail on bad input (device,
    data, policy) is built before the run row
    is written. An exception during training ends the run FAILED, Ctrl-C / SIGTERM KILLED; the
    MLflow run ends with the same status. An unreachable MLflow store does not stop the run
    (see `open_mlflow_sink`).

    Raises:
        EsperError: bad input (see `compile_spec`), or an unusable registry file.
        BadRunName: `name` could be misread as a run id prefix or is not printable.
    """
    check_name(name)  # before anything is compiled
    pipeline = compile_spec(spec)
    with Registry.open(registry) as runs_db:
        tracking: list[Sink] = []
        if spec.tracking.mlflow:
            from esper.nissa.mlflow_sink import open_mlflow_sink  # imports mlflow: ~3 s

            tracking.append(open_mlflow_sink(spec.tracking, spec.name, runs_db))
        new = NewRun(experiment=spec.name, config=spec_to_dict(spec), seed=spec.seed, name=name,
                     spec_path=None if spec_path is None else str(spec_path),
                     device=str(pipeline.device), tags=run_tags(spec), notes=spec.description,
                     group_id=group_id)
        with recording(runs_db, new, sinks=[*sinks, *tracking]) as rec:
            summary = train_recorded(spec, pipeline, rec)
        wiring, record = judge_run(spec, runs_db, rec.run_id)
        return RunResult(record, summary, runs_db.path, wiring, pipeline.policy)


def train_recorded(spec: ExperimentSpec, pipeline: Pipeline, rec: Recording) -> TrainingSummary:
    """Run the env loop of `spec` inside the recording `rec`; record its files as artifacts
    through `rec.registry` (the run's registry, or a sweep worker's relay to it). A learned
    policy's checkpoint is kept as the artifact "policy", except after a frozen evaluation
    (`policy.train` false): its weights are those of `policy.init_from`, unchanged."""
    runs_db = rec.registry
    loop = EnvLoop(spec, pipeline.data, pipeline.policy, rec.hub, pipeline.device,
                   artifact_dir(runs_db.path, rec.run_id))
    summary = loop.run()
    for name, path in summary.artifacts.items():  # the probes' files (profiler traces)
        runs_db.record_artifact(rec.run_id, name, path)
    if isinstance(pipeline.policy, PPOPolicy) and spec.policy.train:
        _save_policy(pipeline.policy, runs_db, rec.run_id)
    return summary


def judge_run(spec: ExperimentSpec, runs_db: Registry, run_id: str, *,
              mlflow: MlflowStore | None = None) -> tuple[list[WiringOutcome], RunRecord]:
    """Judge the wiring of the recorded run `run_id` of `spec` (stored in the registry, and in
    its MLflow run if it has one); returns the outcomes and the run's final row.

    :param mlflow: the store of the run's MLflow run, when the caller holds it open (a sweep's
        driver, for each trial); None: opened from ``spec.tracking`` if the run has one
    """
    wiring = evaluate_run(runs_db, run_id, _producers(spec), spec.wiring)
    record = runs_db.run(run_id)
    if record.mlflow_run_id is not None:
        _log_wiring_to_mlflow(spec, runs_db, record, mlflow)
    return wiring, record


def run_tags(spec: ExperimentSpec) -> dict[str, str]:
    """The registry (and MLflow) tags of a run of `spec`: its `tracking.tags`, and for a frozen
    evaluation `esper.evaluation` = "true" and the absolute path of the checkpoint evaluated."""
    tags = dict(spec.tracking.tags)
    if not spec.policy.train:
        tags[TAG_EVALUATION] = "true"
        if spec.policy.init_from is not None:
            tags[TAG_EVALUATED_CHECKPOINT] = os.path.abspath(spec.policy.init_from)
    return tags


def _producers(spec: ExperimentSpec) -> tuple[str, ...]:
    """The telemetry producers `spec` switches on besides "core": its probes, and "ppo" for a
    learned policy that trains (a PPOPolicy: its updates are telemetry too; a frozen
    evaluation runs none)."""
    updates = spec.policy.type in ("mlp", "lstm") and spec.policy.train
    return (*spec.telemetry.probes, *((PPO,) if updates else ()))


def wiring_warning(spec: ExperimentSpec) -> str | None:
    """A one-line warning when `spec` has a `wiring:` block that expects no field, or expects
    an id whose probe is off, else None.

    Without a `wiring:` block every field of every enabled probe is expected (docs/architecture.md
    section 6); a block expects only the ids it lists, so one with only `xfail:` leaves every
    other field SKIP: declaring one known gap switches every other check off, silently.
    """
    if spec.wiring is None:
        return None
    if spec.wiring.expect:
        return _expected_but_off(spec)
    if spec.wiring.xfail:
        checked = (f"only wiring.xfail ({', '.join(spec.wiring.xfail)}) is checked and every "
                   "other field is SKIP")
    else:
        checked = "no field is checked and every field is SKIP"
    return (f"wiring.expect is empty: {checked}; list the ids to check in wiring.expect, or drop "
            "the wiring block to expect every field of every enabled probe")


def _expected_but_off(spec: ExperimentSpec) -> str | None:
    """A warning naming the ids of `wiring.expect` whose producer is off: their fields are SKIP
    (docs/architecture.md §6), so the expectation is never checked."""
    enabled = {CORE, *_producers(spec)}
    off = {tele_id: sorted(set().union(*(producers(f) for f in BY_ID[tele_id])) - enabled)
           for tele_id in spec.wiring.expect if tele_id in BY_ID}
    off = {tele_id: probes for tele_id, probes in off.items() if probes}
    if not off:
        return None
    named = ", ".join(f"{tele_id} (probe {'/'.join(probes)})" for tele_id, probes in off.items())
    return (f"wiring.expect lists {named} with its producer off: such a field is SKIP, never "
            "checked; add the probe to telemetry.probes (ppo: policy.type mlp or lstm, with "
            "policy.train true), or drop the id from wiring.expect")


def artifact_dir(registry_path: Path, run_id: str) -> Path:
    """Where run `run_id` keeps its files: `artifacts/<run id>/` beside the registry (the folder
    `esper delete` and `esper gc` clean)."""
    return artifact_root(registry_path) / run_id


def _save_policy(policy: PPOPolicy, runs_db: Registry, run_id: str) -> None:
    directory = artifact_dir(runs_db.path, run_id)
    directory.mkdir(parents=True, exist_ok=True)
    policy.save(directory / "policy.pt")
    runs_db.record_artifact(run_id, "policy", directory / "policy.pt")


def _log_wiring_to_mlflow(spec: ExperimentSpec, runs_db: Registry, record: RunRecord,
                          store: MlflowStore | None) -> None:
    """The wiring status into the run's MLflow run; an unreachable store is reported, not fatal
    (the outcomes are in the registry and `esper sync` can push the run later)."""
    from esper.nissa.mlflow_store import MlflowStore, MlflowUnavailable  # imports mlflow
    from esper.nissa.mlflow_wiring import log_wiring

    try:
        store = store or MlflowStore.open(spec.tracking.uri)
        log_wiring(store, record, runs_db.wiring(record.run_id))
    except MlflowUnavailable as error:
        log.warning("wiring not recorded in MLflow: %s", error.message)
