"""The MLflow tracking store esper writes to: where it is, opening it, and its experiments.

Where (docs/architecture.md §5): the experiment's ``tracking.uri``, else ``$MLFLOW_TRACKING_URI``,
else ``sqlite:///mlflow.db`` in the working directory. Artifacts of an SQLite store go beside
it, in ``mlartifacts/``. The URI and the artifact location are always passed to MLflow
explicitly: its implicit defaults (a ``./mlruns`` directory wherever the process happens to
run) are never used, and MLflow 3 refuses the old file store anyway.

Opening creates (or upgrades) an SQLite store and the MLflow experiment at once, before a run
writes anything, under an OS file lock (``mlflow.db.lock`` beside ``mlflow.db``): MLflow's
migrations are not safe to run twice at once (processes that open a fresh store together fail
with "duplicate column name" and can leave it half-migrated for good), so one process creates
the store while the others wait, at most ``LOCK_TIMEOUT`` seconds. A new SQLite store is built
in a temporary file beside it and renamed into place once complete, so a process killed while
creating it leaves no half-made store behind. An HTTP(S)
tracking server is first probed with one short request (``PROBE_TIMEOUT``): MLflow's own client
retries a connection that fails with exponential backoff for about four minutes, so an
unreachable server would otherwise hold the run (or ``esper sync``) that long, silently.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from alembic.util.exc import CommandError
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sqlalchemy.exc import SQLAlchemyError

from esper.leyline.errors import EsperError, describe_error

URI_ENV_VAR = "MLFLOW_TRACKING_URI"
DEFAULT_URI = "sqlite:///mlflow.db"  # relative: in the working directory
ARTIFACTS_DIR = "mlartifacts"  # beside an SQLite store (the name `mlflow server` uses)
_SERVER_SCHEMES = ("http", "https", "databricks")
PROBE_TIMEOUT = 5.0  # seconds an HTTP(S) tracking server gets to connect, then to answer
LOCK_TIMEOUT = 300.0  # seconds to wait while another process creates (or opens) the store
LOCK_SUFFIX = ".lock"  # the lock file is the SQLite file's name plus this, beside it
# What a store that cannot be reached raises: MLflow's own errors (an HTTP store wraps the
# connection errors in them), file-system errors (an SQLite path that cannot be created),
# SQLAlchemy's (a database that cannot be opened or written) and alembic's (a schema migration
# that fails).
STORE_ERRORS = (MlflowException, OSError, SQLAlchemyError, CommandError)

# MLflow logs "Creating initial MLflow database tables..." at INFO, timestamped, on the stderr
# of the first run in a directory: noise around esper's progress line. Its warnings still show.
logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)


# MLflow 3's UI opens an experiment without a kind in its GenAI layout (evaluation runs, traces,
# judges); this kind opens the model-training one (runs, metrics, charts, artifacts).
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
DESCRIPTION_TAG = "mlflow.note.content"  # what the UI shows as an experiment's or run's description


def experiment_description(name: str) -> str:
    """The description an experiment esper creates gets in the MLflow UI."""
    shown = re.sub(r"([\\`*_{}\[\]()#+.!|<>-])", r"\\\1", name)  # literal, not Markdown
    return (f"Runs of the esper experiment {shown}: morphogenetic training, where a host "
            "network grows seed modules in slots under a heuristic or PPO policy. Each run "
            "holds its metrics per env and epoch, its resolved config, the event stream "
            "(`events/events.jsonl.gz`, and `events/events.jsonl` where small enough to preview) "
            "and plots (`plots/learning_curves.png`, `plots/growth.png`). The run registry "
            "(`runs.db`) holds the same runs: `esper runs`, `esper show RUN`.")


class TrackingError(EsperError):
    """MLflow cannot be used as asked."""


class MlflowUnavailable(TrackingError):
    """The tracking store cannot be reached or written; the run is still in the registry."""


@dataclass(frozen=True)
class StoreLocation:
    """A tracking store and where the artifacts of its new experiments go."""

    uri: str  # the tracking URI; an SQLite path is made absolute
    artifact_root: str | None  # None: a tracking server decides where artifacts go
    database: Path | None = None  # the file of an SQLite store

    @property
    def lock_path(self) -> Path | None:
        """The file locked while the store is opened or created; None: not an SQLite file."""
        return None if self.database is None else self.database.with_name(
            self.database.name + LOCK_SUFFIX)

    @property
    def is_server(self) -> bool:
        """A tracking server (http, https, databricks) rather than a database esper opens."""
        return self.uri.partition(":")[0] in _SERVER_SCHEMES


def locate_store(uri: str | None = None) -> StoreLocation:
    """The store ``uri`` names; None: ``$MLFLOW_TRACKING_URI``, else ``./mlflow.db``.

    A relative SQLite path is resolved against the working directory now, so the location does
    not move when a later command runs elsewhere.
    """
    chosen = uri or os.environ.get(URI_ENV_VAR) or DEFAULT_URI
    if chosen.startswith("sqlite:///"):
        # sqlite:///relative/path and sqlite:////absolute/path; a ?query stays as it is.
        path_text, mark, query = chosen.removeprefix("sqlite:///").partition("?")
        path = Path(path_text).absolute()
        return StoreLocation(f"sqlite:///{path}{mark}{query}", str(path.parent / ARTIFACTS_DIR),
                             path)
    if chosen.partition(":")[0] in _SERVER_SCHEMES:
        return StoreLocation(chosen, None)
    return StoreLocation(chosen, str(Path.cwd() / ARTIFACTS_DIR))  # another database server


class MlflowStore:
    """An ``MlflowClient`` bound to one explicit tracking store. Open it with ``open``."""

    def __init__(self, location: StoreLocation, client: MlflowClient) -> None:
        self.location = location
        self.client = client

    @classmethod
    def open(cls, uri: str | None = None) -> MlflowStore:
        """Open the store ``uri`` names (see ``locate_store``), creating an SQLite store now
        (under the store's lock: see the module docstring).

        Raises:
            MlflowUnavailable: the store cannot be reached or created, or another process held
                its lock for ``LOCK_TIMEOUT`` seconds.
        """
        location = locate_store(uri)
        _probe(location)
        with _reported(location, "open it"), _creation_lock(location):
            if location.database is not None and not _exists(location.database):
                _create_sqlite_store(location, location.database)
            client = MlflowClient(tracking_uri=location.uri)
            client.search_experiments(max_results=1)  # a remote store answers, or raises now
        return cls(location, client)

    @classmethod
    def open_existing(cls, uri: str | None = None) -> MlflowStore | None:
        """Like ``open``, but None for an SQLite store that does not exist: nothing is created
        (to find or change runs, where a missing store holds none).

        Raises:
            MlflowUnavailable: as ``open``.
        """
        database = locate_store(uri).database
        if database is not None and not _exists(database):
            return None
        return cls.open(uri)

    @contextmanager
    def reporting(self, action: str) -> Iterator[None]:
        """Turn the errors of an unreachable store into ``MlflowUnavailable`` naming ``action``."""
        with _reported(self.location, action):
            yield

    def experiment_id(self, name: str) -> str:
        """The id of the MLflow experiment ``name``, created with its artifact location if new.

        Raises:
            MlflowUnavailable: the store cannot be written, or the experiment is deleted.
        """
        with self.reporting(f"create the experiment '{name}'"), _creation_lock(self.location):
            experiment = self.client.get_experiment_by_name(name)
            if experiment is None:
                try:
                    return self.client.create_experiment(
                        name, self._artifact_location(name),
                        tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND,
                              DESCRIPTION_TAG: experiment_description(name)})
                except MlflowException as exc:
                    if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                        raise
                experiment = self.client.get_experiment_by_name(name)  # another run created it
            if experiment.lifecycle_stage != "deleted" and EXPERIMENT_KIND_TAG not in experiment.tags:
                # made by an older esper: its UI view was MLflow's GenAI one
                self.client.set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND_TAG,
                                               EXPERIMENT_KIND)
        if experiment.lifecycle_stage == "deleted":
            raise MlflowUnavailable(
                f"the MLflow experiment '{name}' is deleted in {self.location.uri}: restore it "
                "(mlflow experiments restore) or set tracking.experiment to another name"
            )
        return experiment.experiment_id

    def _artifact_location(self, experiment: str) -> str | None:
        if self.location.artifact_root is None:
            return None  # the tracking server's own artifact root
        folder = re.sub(r"[^A-Za-z0-9_.-]", "_", experiment)  # runs have their own subfolders
        return Path(self.location.artifact_root, folder).as_uri()


def _probe(location: StoreLocation) -> None:
    """Raise ``MlflowUnavailable`` unless an HTTP(S) store answers one request within
    ``PROBE_TIMEOUT`` seconds (any HTTP status will do: it is reachable).

    The request goes through ``requests`` like MLflow's own, with the same proxies (from the
    environment) and MLflow's TLS settings, but without retries.
    """
    if location.uri.partition(":")[0] not in ("http", "https"):
        return  # a database esper opens itself, or Databricks (its SDK has its own timeouts)
    import requests  # a dependency of MLflow
    from mlflow.environment_variables import (
        MLFLOW_TRACKING_CLIENT_CERT_PATH,
        MLFLOW_TRACKING_INSECURE_TLS,
        MLFLOW_TRACKING_SERVER_CERT_PATH,
    )

    verify: bool | str = not MLFLOW_TRACKING_INSECURE_TLS.get()
    if verify and MLFLOW_TRACKING_SERVER_CERT_PATH.get():
        verify = MLFLOW_TRACKING_SERVER_CERT_PATH.get()
    try:
        with requests.Session() as session:
            session.get(f"{location.uri.rstrip('/')}/health", timeout=PROBE_TIMEOUT,
                        allow_redirects=False, verify=verify,
                        cert=MLFLOW_TRACKING_CLIENT_CERT_PATH.get())
    except requests.RequestException as exc:
        reason = describe_error(exc)
        if reason == "timed out":
            reason = f"no answer within {PROBE_TIMEOUT:g} s"
        raise MlflowUnavailable(
            f"MLflow tracking store {location.uri} cannot be reached ({reason})") from exc


@contextmanager
def _creation_lock(location: StoreLocation) -> Iterator[None]:
    """Hold the store's lock file (``fcntl.flock``, released by the OS if the process dies);
    nothing for a store that is not an SQLite file.

    Raises:
        MlflowUnavailable: another process held the lock for ``LOCK_TIMEOUT`` seconds.
        OSError: the lock file (or the store's directory) cannot be created.
    """
    if location.lock_path is None:
        yield
        return
    location.lock_path.parent.mkdir(parents=True, exist_ok=True)  # as MLflow would for the store
    with open(location.lock_path, "a") as lock:
        deadline = time.monotonic() + LOCK_TIMEOUT
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise MlflowUnavailable(
                        f"MLflow tracking store {location.uri}: another process has held its "
                        f"lock {location.lock_path} for over {LOCK_TIMEOUT:g} s while creating "
                        "or opening it; try again once that process has finished") from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _exists(database: Path) -> bool:
    return database.is_file() and database.stat().st_size > 0  # SQLite's empty file: not yet


def _create_sqlite_store(location: StoreLocation, database: Path) -> None:
    """Create the store in a temporary file, then rename it to ``database`` (atomic). Call
    under the store's lock: a temporary file already there is a dead creator's, removed."""
    for leftover in database.parent.glob(f"{database.name}.creating-*"):
        leftover.unlink()
    building = database.with_name(f"{database.name}.creating-{os.getpid()}-{time.time_ns()}")
    # A name of its own: MLflow caches a store per URI for the life of the process.
    MlflowClient(tracking_uri=location.uri.replace(str(database), str(building), 1)
                 ).search_experiments(max_results=1)
    os.replace(building, database)


@contextmanager
def _reported(location: StoreLocation, action: str) -> Iterator[None]:
    try:
        yield
    except STORE_ERRORS as exc:
        raise MlflowUnavailable(
            f"MLflow tracking store {location.uri}: cannot {action} ({describe_error(exc)})"
        ) from exc
