"""Run rows: creation with provenance, end status, queries, references, derived CRASHED."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta

import pytest

from esper.leyline.events import SinkStats
from esper.registry import AmbiguousRun, Registry, RunNotFound, RunStatus

from .builders import new_run


def test_a_new_run_is_running_with_its_config_hash_and_provenance(registry: Registry):
    before = time.time()
    run = registry.create_run(new_run(tags={"team": "a"}, device="cpu", notes="first"))
    assert len(run.run_id) == 12 and int(run.run_id, 16) >= 0
    assert run.name == "exp-1" and run.status is RunStatus.RUNNING
    assert run.config == {"lr": 0.01, "envs": [1, 2]} and run.seed == 7
    canonical = json.dumps(run.config, sort_keys=True, separators=(",", ":"))
    assert run.config_sha256 == hashlib.sha256(canonical.encode()).hexdigest()
    assert run.pid == os.getpid() and run.host and run.python_version.startswith("3.")
    assert run.esper_version and run.torch_version
    assert before <= run.started_at <= run.heartbeat_at <= time.time()
    assert run.ended_at is None and run.duration is None
    assert run.tags == {"team": "a"} and run.notes == "first" and run.event_count == 0


def test_default_names_count_the_runs_of_the_experiment(registry: Registry):
    names = [registry.create_run(new_run(e)).name for e in ("a", "a", "b", "a")]
    assert names == ["a-1", "a-2", "b-1", "a-3"]
    assert registry.create_run(new_run("a", name="custom")).name == "custom"


def test_a_default_name_skips_names_given_by_hand(registry: Registry):
    registry.create_run(new_run("a"))
    registry.create_run(new_run("a", name="a-3"))  # --name a-3, before a-3 was reached
    names = [registry.create_run(new_run("a")).name for _ in range(2)]
    assert names == ["a-4", "a-5"]  # the 3rd run of a would be a-3: taken


def test_spec_file_hash_is_recorded(registry: Registry, tmp_path):
    spec = tmp_path / "exp.yaml"
    spec.write_text("name: exp\n")
    run = registry.create_run(new_run(spec_path=str(spec)))
    assert run.spec_path == str(spec)
    assert run.spec_sha256 == hashlib.sha256(b"name: exp\n").hexdigest()


def test_git_commit_and_dirty_flag_of_the_working_directory(registry: Registry, tmp_path,
                                                             monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(repo)]
    subprocess.run([*git, "init", "-q"], check=True)
    (repo / "f.txt").write_text("1")
    subprocess.run([*git, "add", "f.txt"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "c"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True,
                          text=True).stdout.strip()
    monkeypatch.chdir(repo)
    clean = registry.create_run(new_run())
    (repo / "f.txt").write_text("2")
    dirty = registry.create_run(new_run())
    assert (clean.git_commit, clean.git_dirty) == (head, False)
    assert (dirty.git_commit, dirty.git_dirty) == (head, True)
    monkeypatch.chdir(tmp_path)
    assert (registry.create_run(new_run()).git_commit, registry.runs()[0].git_dirty) == (None, None)


def test_finish_records_status_reason_traceback_and_sink_reports(registry: Registry):
    run = registry.create_run(new_run())
    sinks = (SinkStats("registry", 10, 0, 0, None), SinkStats("mlflow", 7, 3, 1, "OSError: x"))
    done = registry.finish_run(run.run_id, RunStatus.FAILED, exit_reason="ValueError: bad",
                               traceback="Traceback ...", sinks=sinks)
    assert done.status is RunStatus.FAILED and done.exit_reason == "ValueError: bad"
    assert done.traceback == "Traceback ..." and done.sinks == sinks
    assert done.events_dropped == 3 and done.duration is not None and done.duration >= 0
    with pytest.raises(ValueError, match="CRASHED"):
        registry.finish_run(run.run_id, RunStatus.CRASHED)


def test_query_filters(registry: Registry):
    a1 = registry.create_run(new_run("a", tags={"kind": "baseline"}))
    time.sleep(0.01)
    b1 = registry.create_run(new_run("b", tags={"kind": "sweep"}))
    time.sleep(0.01)
    a2 = registry.create_run(new_run("a", name="special", group_id="g1"))
    registry.finish_run(a1.run_id, RunStatus.FINISHED)
    registry.finish_run(b1.run_id, RunStatus.KILLED)

    def ids(**filters):
        return [r.run_id for r in registry.runs(**filters)]

    assert ids() == [a2.run_id, b1.run_id, a1.run_id]  # newest first
    assert ids(experiment="a") == [a2.run_id, a1.run_id]
    assert ids(name="special") == [a2.run_id]
    assert ids(status=RunStatus.FINISHED) == [a1.run_id]
    assert ids(status=RunStatus.RUNNING) == [a2.run_id]
    assert ids(tag="kind") == [b1.run_id, a1.run_id]
    assert ids(tag="kind=sweep") == [b1.run_id]
    assert ids(tag="kind=nope") == []
    assert ids(group_id="g1") == [a2.run_id] and ids(group_id="g2") == []
    middle = datetime.fromtimestamp((a1.started_at + b1.started_at) / 2)
    assert ids(since=middle) == [a2.run_id, b1.run_id]
    assert ids(until=middle) == [a1.run_id]
    assert ids(since=middle + timedelta(days=1)) == []
    assert ids(limit=2) == [a2.run_id, b1.run_id]


def test_resolve_by_id_prefix_and_name(registry: Registry):
    first = registry.create_run(new_run("a", name="same"))
    time.sleep(0.01)
    second = registry.create_run(new_run("a", name="same"))
    assert registry.resolve(first.run_id).run_id == first.run_id
    assert registry.resolve(first.run_id[:8]).run_id == first.run_id
    assert registry.resolve("same").run_id == second.run_id  # a name means its latest run


def test_an_ambiguous_prefix_lists_the_candidates(registry: Registry):
    runs = [registry.create_run(new_run()) for _ in range(40)]
    by_first = {}
    for run in runs:
        by_first.setdefault(run.run_id[0], []).append(run)
    prefix, clash = next((k, v) for k, v in by_first.items() if len(v) > 1)
    with pytest.raises(AmbiguousRun) as error:
        registry.resolve(prefix)
    assert error.value.exit_code == 2
    assert f"run id prefix '{prefix}' matches {len(clash)} runs" in error.value.message
    assert all(r.run_id in error.value.message for r in clash[:8])


def test_an_unknown_reference_suggests_close_names_or_the_latest_runs(registry: Registry):
    with pytest.raises(RunNotFound, match="the registry has no runs yet"):
        registry.resolve("anything")
    run = registry.create_run(new_run("quickstart"))
    with pytest.raises(RunNotFound, match="did you mean: quickstart-1"):
        registry.resolve("quickstart-l")
    with pytest.raises(RunNotFound) as error:
        registry.resolve("zzz")
    assert error.value.message == (
        f"no run matches 'zzz'; latest runs: {run.run_id} (quickstart-1, "
        f"{datetime.fromtimestamp(run.started_at):%Y-%m-%d %H:%M})")
    assert error.value.exit_code == 2


def test_a_running_row_whose_process_is_gone_shows_as_crashed(registry: Registry, db_path):
    child = subprocess.run(
        [sys.executable, "-c",
         "import sys; from esper.registry import Registry, NewRun; "
         "r = Registry.open(sys.argv[1]); "
         "print(r.create_run(NewRun(experiment='gone', config={}, seed=0)).run_id)",
         str(db_path)],
        check=True, capture_output=True, text=True)
    run_id = child.stdout.strip()
    assert registry.run(run_id).status is RunStatus.CRASHED  # same host, pid dead
    assert [r.run_id for r in registry.runs(status=RunStatus.CRASHED)] == [run_id]
    assert registry.runs(status=RunStatus.RUNNING) == []


def test_a_stale_heartbeat_decides_only_where_the_process_cannot_be_checked(db_path):
    with Registry.open(db_path, stale_after=0.2) as registry:
        run = registry.create_run(new_run())  # this process: alive
        time.sleep(0.3)
        assert registry.run(run.run_id).status is RunStatus.RUNNING  # its process lives
        with sqlite3.connect(db_path) as db:  # another host's run: its pid means nothing here
            db.execute("UPDATE runs SET host = 'elsewhere', pid_space = 'theirs' "
                       "WHERE run_id = ?", [run.run_id])
        assert registry.run(run.run_id).status is RunStatus.CRASHED
        registry.heartbeat(run.run_id)
        assert registry.run(run.run_id).status is RunStatus.RUNNING


def test_heartbeat_does_not_revive_an_ended_run(registry: Registry):
    run = registry.create_run(new_run())
    ended = registry.finish_run(run.run_id, RunStatus.FINISHED)
    registry.heartbeat(run.run_id)
    assert registry.run(run.run_id).heartbeat_at == ended.heartbeat_at
