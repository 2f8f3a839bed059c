"""The MLflow tracking store esper writes to: where it is, opening it, and its experiments.

Where (DESIGN.md section 5): the experiment's ``tracking.uri``, else ``$MLFLOW_TRACKING_URI``,
else ``sqlite:///mlflow.db`` in the working directory. Artifacts of an SQLite store go beside
it, in ``mlartifacts/``. The URI and the artifact location are always passed to MLflow
explicitly: its implicit defaults (a ``./mlruns`` directory wherever the process happens to
run) are never used, and MLflow 3 refuses the old file store anyway.

Opening creates (or upgrades) an SQLite store and the MLflow experiment at once, before a run
writes anything, so concurrent runs never race to create them halfway through. An HTTP(S)
tracking server is first probed with one short request (``PROBE_TIMEOUT``): MLflow's own client
retries a connection that fails with exponential backoff for about four minutes, so an
unreachable server would otherwise hold the run (or ``esper sync``) that long, silently.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sqlalchemy.exc import SQLAlchemyError

from esper.leyline.errors import EsperError, describe_error

URI_ENV_VAR = "MLFLOW_TRACKING_URI"
DEFAULT_URI = "sqlite:///mlflow.db"  # relative: in the working directory
ARTIFACTS_DIR = "mlartifacts"  # beside an SQLite store (the name `mlflow server` uses)
_SERVER_SCHEMES = ("http", "https", "databricks")
PROBE_TIMEOUT = 5.0  # seconds an HTTP(S) tracking server gets to connect, then to answer
# What a store that cannot be reached raises: MLflow's own errors (an HTTP store wraps the
# connection errors in them), file-system errors (an SQLite path that cannot be created), and
# SQLAlchemy's (a database that cannot be opened or written).
STORE_ERRORS = (MlflowException, OSError, SQLAlchemyError)

# MLflow logs "Creating initial MLflow database tables..." at INFO, timestamped, on the stderr
# of the first run in a directory: noise around esper's progress line. Its warnings still show.
logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)


class TrackingError(EsperError):
    """MLflow cannot be used as asked."""


class MlflowUnavailable(TrackingError):
    """The tracking store cannot be reached or written; the run is still in the registry."""


@dataclass(frozen=True)
class StoreLocation:
    """A tracking store and where the artifacts of its new experiments go."""

    uri: str  # the tracking URI; an SQLite path is made absolute
    artifact_root: str | None  # None: a tracking server decides where artifacts go

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
        return StoreLocation(f"sqlite:///{path}{mark}{query}", str(path.parent / ARTIFACTS_DIR))
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
        """Open the store ``uri`` names (see ``locate_store``), creating an SQLite store now.

        Raises:
            MlflowUnavailable: the store cannot be reached or created.
        """
        location = locate_store(uri)
        _probe(location)
        with _reported(location, "open it"):
            client = MlflowClient(tracking_uri=location.uri)
            client.search_experiments(max_results=1)  # a remote store answers, or raises now
        return cls(location, client)

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
        with self.reporting(f"create the experiment '{name}'"):
            experiment = self.client.get_experiment_by_name(name)
            if experiment is None:
                try:
                    return self.client.create_experiment(name, self._artifact_location(name))
                except MlflowException as exc:
                    if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                        raise
                experiment = self.client.get_experiment_by_name(name)  # another run created it
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
def _reported(location: StoreLocation, action: str) -> Iterator[None]:
    try:
        yield
    except STORE_ERRORS as exc:
        raise MlflowUnavailable(
            f"MLflow tracking store {location.uri}: cannot {action} ({describe_error(exc)})"
        ) from exc
