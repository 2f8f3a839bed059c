"""One esper run as an MLflow run: its tags, params, experiment artifacts and end status.

The MLflow run is built from the registry's row of the esper run (``RunRecord``), so a run
pushed later by ``esper sync`` gets exactly the tags and params it would have got live.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from mlflow.entities import Param, Run, RunTag
from mlflow.store.entities.paged_list import PagedList

from esper.experiment.config_diff import flatten  # the one dotted-key flattening of configs
from esper.nissa.mlflow_store import DESCRIPTION_TAG, MlflowStore
from esper.registry import Registry, RunNotFound, RunRecord, RunStatus
from esper.registry.runs import sha256_of_file

logger = logging.getLogger(__name__)

T = TypeVar("T")

MAX_PARAM_LENGTH = 6000  # characters in an MLflow param value (MLflow's MAX_PARAM_VAL_LENGTH)
RESOLVED_CONFIG = "config/resolved.json"  # artifact: the resolved config
LONG_PARAMS = "config/long_params.json"  # artifact: params too long for MLflow, by dotted key
EXPERIMENT_DIR = "experiment"  # artifact folder: the experiment file as given

# Tags esper sets besides MLflow's system tags.
TAG_RUN_ID = "esper.run_id"
TAG_EVENTS = "esper.events"  # events the MLflow run was built from; equals the registry's count
TAG_STATUS = "esper.status"  # the registry's status (CRASHED included)
TAG_EXIT_REASON = "esper.exit_reason"
TAG_REGISTRY = "esper.registry"  # the absolute path of the registry that holds the esper run
TAG_NOTE = DESCRIPTION_TAG  # the run's description in the UI: the registry's notes

#: The MLflow status that mirrors a registry status (CRASHED: the process died, FAILED).
MLFLOW_STATUS = {
    RunStatus.FINISHED: "FINISHED",
    RunStatus.FAILED: "FAILED",
    RunStatus.KILLED: "KILLED",
    RunStatus.CRASHED: "FAILED",
}


@dataclass(frozen=True)
class ConfigParams:
    """A resolved config as MLflow params: dotted keys, text values."""

    params: dict[str, str]
    too_long: dict[str, str]  # values over MAX_PARAM_LENGTH, logged as an artifact instead


def config_params(config: Mapping[str, Any]) -> ConfigParams:
    """Flatten ``config`` to dotted keys; strings stay as they are, other values become JSON."""
    params, too_long = {}, {}
    for key, value in flatten(dict(config)).items():
        text = value if isinstance(value, str) else json.dumps(value)
        (too_long if len(text) > MAX_PARAM_LENGTH else params)[key] = text
    return ConfigParams(params, too_long)


def run_tags(record: RunRecord, registry_path: Path) -> dict[str, str]:
    """MLflow's system tags, set explicitly, esper's provenance, and the experiment's tags."""
    tags = dict(record.tags)  # tracking.tags of the experiment; esper's own keys win
    tags.update({
        "mlflow.runName": record.name,
        "mlflow.user": record.user or "unknown",
        TAG_NOTE: record.notes,
        "mlflow.source.type": "LOCAL",
        TAG_RUN_ID: record.run_id,
        "esper.experiment": record.experiment,
        "esper.seed": str(record.seed),
        "esper.config_sha256": record.config_sha256,
        "esper.host": record.host,
        "esper.device": record.device,
        "esper.version": record.esper_version,
        TAG_REGISTRY: str(registry_path.absolute()),
    })
    if record.spec_path is not None:
        tags["mlflow.source.name"] = record.spec_path
    if record.git_commit is not None:
        tags["mlflow.source.git.commit"] = record.git_commit
        tags["esper.git_dirty"] = str(record.git_dirty).lower()
    return tags


def create_mlflow_run(store: MlflowStore, experiment_id: str, record: RunRecord,
                      registry_path: Path) -> str:
    """Create the MLflow run of ``record`` with its tags, params and experiment artifacts.

    Returns the MLflow run id. Call inside ``store.reporting``.
    """
    client = store.client
    created = client.create_run(experiment_id, start_time=to_ms(record.started_at),
                                tags=run_tags(record, registry_path), run_name=record.name)
    run_id = created.info.run_id
    params = config_params(record.config)
    client.log_batch(run_id, params=[Param(k, v) for k, v in params.params.items()])
    client.log_dict(run_id, dict(record.config), RESOLVED_CONFIG)
    if params.too_long:
        client.log_dict(run_id, params.too_long, LONG_PARAMS)
    if _spec_file_unchanged(record):
        client.log_artifact(run_id, record.spec_path, EXPERIMENT_DIR)
    return run_id


def end_stale_runs(store: MlflowStore, registry: Registry) -> list[str]:
    """Terminate the MLflow runs still RUNNING whose esper run (their ``esper.run_id`` tag) has
    ended in ``registry``, with the registry's status (CRASHED: FAILED).

    Their process could not end them: it died (SIGKILL, OOM, power loss), or its end was cut
    short while the store hung (a second signal, the close deadline). Runs of other
    registries are left alone. Returns the esper run ids whose MLflow run was ended. Call
    inside ``store.reporting``.
    """
    ended = []
    for mlflow_run in _search(store, "attributes.status = 'RUNNING'"):
        try:
            record = registry.run(mlflow_run.data.tags.get(TAG_RUN_ID, ""))
        except RunNotFound:
            continue
        if record.status is RunStatus.RUNNING:
            continue
        tags = [RunTag(TAG_STATUS, record.status.value)]
        if record.exit_reason:
            tags.append(RunTag(TAG_EXIT_REASON, record.exit_reason))
        store.client.log_batch(mlflow_run.info.run_id, tags=tags)
        end = record.ended_at or record.heartbeat_at or record.started_at  # CRASHED: last sign
        store.client.set_terminated(mlflow_run.info.run_id, MLFLOW_STATUS[record.status],
                                    end_time=to_ms(end))
        ended.append(record.run_id)
    return ended


def mlflow_runs_of(store: MlflowStore, run_id: str) -> list[Run]:
    """The MLflow runs (not deleted) of esper run ``run_id`` in any experiment of the store,
    found by their ``esper.run_id`` tag. Call inside ``store.reporting``."""
    return _search(store, f"tags.`{TAG_RUN_ID}` = '{run_id}'")


def esper_runs(store: MlflowStore) -> list[Run]:
    """Every active MLflow run of the store that has an ``esper.run_id`` tag. Call inside
    ``store.reporting``."""
    return _search(store, f"tags.`{TAG_RUN_ID}` LIKE '%'")


def _search(store: MlflowStore, filter_string: str) -> list[Run]:
    """Every active run matching ``filter_string`` in the store's active experiments."""
    client = store.client
    experiments = _all_pages(lambda token: client.search_experiments(page_token=token))
    ids = [experiment.experiment_id for experiment in experiments]
    return _all_pages(lambda token: client.search_runs(ids, filter_string, page_token=token))


def _all_pages(fetch: Callable[[str | None], PagedList[T]]) -> list[T]:
    items, token = [], None
    while True:
        page = fetch(token)
        items += page
        if not page.token:
            return items
        token = page.token


def _spec_file_unchanged(record: RunRecord) -> bool:
    if record.spec_path is None or record.spec_sha256 is None:
        return False
    if sha256_of_file(record.spec_path) != record.spec_sha256:
        logger.warning("%s changed (or is gone) since run %s read it: the MLflow run gets its "
                       "resolved config only", record.spec_path, record.run_id)
        return False
    return True


def to_ms(seconds: float) -> int:
    """Unix seconds -> MLflow's integer milliseconds."""
    return int(round(seconds * 1000))
