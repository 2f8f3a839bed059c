"""first_divergence on streams written concurrently (their ids interleave) whose payloads hold
NaN and Infinity (tokens SQLite's JSON functions reject, or read as JSON5), read from the
registry in one page or in many; and which configs get a verdict."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest

from esper.compare import divergence as divergence_module
from esper.compare.divergence import first_divergence, same_stream_config
from esper.compare.report import compare
from esper.experiment import spec_from_dict, spec_to_dict
from esper.experiment.runner import run
from esper.leyline.events import (
    BatchCompletedPayload,
    EpisodeOutcomePayload,
    HeadValues,
    PPOUpdatePayload,
    Severity,
    TelemetryEvent,
    TelemetryEventType,
    ThroughputPayload,
)
from esper.registry import NewRun, Registry
from tests.spec_factory import tiny_document

T = TelemetryEventType
NAN, INF = math.nan, math.inf
_HEADS = HeadValues(*([0.5] * 8))


def _ppo(clock: random.Random, explained_variance: float | None) -> PPOUpdatePayload:
    return PPOUpdatePayload(
        policy_loss=NAN, value_loss=INF, entropy=1.0, entropy_per_head=_HEADS, approx_kl=0.01,
        clip_fraction=0.1, explained_variance=explained_variance, ratio_mean=1.0, ratio_min=0.8,
        ratio_max=1.2, ratio_std=0.05, ratio_max_per_head=_HEADS, pre_clip_grad_norm=1.5,
        advantage_mean=0.0, advantage_std=1.0, return_mean=0.4, return_std=0.2,
        entropy_coef=0.01, epochs_completed=4, early_stopped=False,
        update_time_ms=clock.uniform(50, 60))


def _stream(run_id: str, clock: random.Random, events: int = 120,
            differ_at: int | None = None) -> list[TelemetryEvent]:
    """`events` events of a run; ts and the wall-clock fields (which may be NaN or Infinity)
    come from `clock`; PPO updates have NaN / Infinity losses. At seq `differ_at` a field
    differs: the clock of a throughput event, the explained variance of a PPO update (None
    instead of NaN), the seeds pruned in an episode outcome."""
    out = []
    for seq in range(events):
        data: object
        if seq % 4 == 0:
            kind, data = T.THROUGHPUT_MEASURED, ThroughputPayload(
                clock.choice([NAN, INF, clock.uniform(20, 30)]),
                "cuda" if seq == differ_at else "cpu", clock.uniform(1, 2),
                clock.choice([NAN, 40.0]))
        elif seq % 4 == 1:
            kind, data = T.PPO_UPDATE_COMPLETED, _ppo(
                clock, None if seq == differ_at else NAN)
        else:
            kind, data = T.EPISODE_OUTCOME, EpisodeOutcomePayload(
                NAN, 1.1, 1, 0, int(seq == differ_at), -INF)
        out.append(TelemetryEvent(run_id, seq, 1000.0 + clock.random(), kind, Severity.INFO,
                                  seq // 10, 0, seq, None, None, "", data))
    return out


#: run name -> (seq, type, field) of its first difference with the base run
DIFFERENCES = {
    "nan_vs_null": (41, T.PPO_UPDATE_COMPLETED, "explained_variance"),
    "before_middle": (59, T.EPISODE_OUTCOME, "seeds_pruned"),
    "at_middle": (60, T.THROUGHPUT_MEASURED, "clock"),
    "late": (97, T.PPO_UPDATE_COMPLETED, "explained_variance"),
}


@pytest.fixture(scope="module")
def interleaved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """Runs written together, 7 events of each in turn: the base run, a twin (differs only in
    ts and wall-clock fields), runs that differ at seq 41, 59, 60 or 97 (read 10 at a time, seq 59
    ends a page and 60 starts one), and one that stops at seq 100."""
    path = tmp_path_factory.mktemp("divergence") / "runs.db"
    with Registry.open(path) as registry:
        ids = {name: registry.create_run(NewRun(experiment="div", config={}, seed=1)).run_id
               for name in ("base", "twin", "short", *DIFFERENCES)}
        streams = [_stream(ids["base"], random.Random(1)),
                   _stream(ids["twin"], random.Random(2)),
                   _stream(ids["short"], random.Random(3), events=100)]
        streams += [_stream(ids[name], random.Random(seq), differ_at=seq)
                    for name, (seq, _, _) in DIFFERENCES.items()]
        for start in range(0, 120, 7):
            for stream in streams:
                if stream[start:start + 7]:
                    registry.write_events(stream[start:start + 7])
    return path, ids


@pytest.fixture(params=["one page", "pages of 10"], autouse=True)
def scan(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test runs as is (120 events: one page of each run) and with the streams read 10
    events at a time (differences at seq 59, 60 and 97 fall at the end, the start and the
    middle of a page)."""
    if request.param == "pages of 10":
        monkeypatch.setattr(divergence_module, "_PAGE", 10)


def test_interleaved_twins_with_nan_payloads_are_identical(interleaved):
    path, ids = interleaved
    with Registry.open(path, create=False) as registry:
        divergence = first_divergence(registry, ids["base"], ids["twin"])
    assert divergence.identical and divergence.seq is None and not divergence.fields
    assert divergence.events_a == divergence.events_b == 120


@pytest.mark.parametrize("run", DIFFERENCES)
def test_the_first_difference_is_found_with_its_field(interleaved, run):
    path, ids = interleaved
    with Registry.open(path, create=False) as registry:
        divergence = first_divergence(registry, ids["base"], ids[run])
    seq, event_type, name = DIFFERENCES[run]
    assert not divergence.identical and divergence.seq == seq
    assert divergence.event_type_a == divergence.event_type_b == event_type.value
    (difference,) = divergence.fields
    assert difference.field == f"data.{name}"
    if name == "explained_variance":  # NaN against null: SQLite's JSON5 reads NaN as null
        assert math.isnan(difference.a) and difference.b is None


@pytest.mark.parametrize("order", ["base first", "short first"])
def test_a_shorter_interleaved_stream_diverges_where_it_ends(interleaved, order):
    path, ids = interleaved
    run_a, run_b = ids["base"], ids["short"]
    if order == "short first":
        run_a, run_b = run_b, run_a
    with Registry.open(path, create=False) as registry:
        divergence = first_divergence(registry, run_a, run_b)
    assert not divergence.identical and divergence.seq == 100
    longer_type = T.THROUGHPUT_MEASURED.value  # seq 100 is a multiple of 4
    expected = (longer_type, None) if order == "base first" else (None, longer_type)
    assert (divergence.event_type_a, divergence.event_type_b) == expected
    assert (divergence.events_a, divergence.events_b) == (
        (120, 100) if order == "base first" else (100, 120))


#: run name -> the seqs lost from its stream (a twin of the base run otherwise)
LOST = {"lost_21": (21,), "lost_0": (0,), "lost_119": (119,)}


@pytest.fixture(scope="module")
def lossy(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The base run and twins of it that lost events (gaps in seq, docs/architecture.md §3): one
    each of LOST, and a base run that lost seq 50 beside a twin that lost seq 70 (the same
    event count)."""
    path = tmp_path_factory.mktemp("lossy") / "runs.db"
    with Registry.open(path) as registry:
        ids = {name: registry.create_run(NewRun(experiment="div", config={}, seed=1)).run_id
               for name in ("base", "base_lost_50", "twin_lost_70", *LOST)}
        lost = {**LOST, "base_lost_50": (50,), "twin_lost_70": (70,)}
        for name, run_id in ids.items():
            stream = _stream(run_id, random.Random(len(name)))
            registry.write_events([e for e in stream if e.seq not in lost.get(name, ())])
    return path, ids


@pytest.mark.parametrize("run", LOST)
@pytest.mark.parametrize("order", ["base first", "lossy first"])
def test_a_lost_event_is_a_divergence_where_it_was_lost(lossy, run, order):
    path, ids = lossy
    run_a, run_b = (ids["base"], ids[run]) if order == "base first" else (ids[run], ids["base"])
    with Registry.open(path, create=False) as registry:
        divergence = first_divergence(registry, run_a, run_b)
        (lost,) = LOST[run]
        (event_type,) = registry.query("SELECT event_type FROM events WHERE run_id = ? AND "
                                       "seq = ?", [ids["base"], lost])[0]
    assert not divergence.identical and divergence.seq == lost
    expected = (event_type, None) if order == "base first" else (None, event_type)
    assert (divergence.event_type_a, divergence.event_type_b) == expected


def test_streams_that_lost_different_events_are_not_identical(lossy):
    path, ids = lossy
    with Registry.open(path, create=False) as registry:
        divergence = first_divergence(registry, ids["base_lost_50"], ids["twin_lost_70"])
    assert divergence.events_a == divergence.events_b == 119
    assert not divergence.identical and divergence.seq == 50
    assert (divergence.event_type_a, divergence.event_type_b) == (None, T.EPISODE_OUTCOME.value)


def test_memory_readings_are_not_a_divergence(tmp_path: Path):
    """The memory probe's rss_mb differs between two processes running the same config and
    seed: the check reported a divergence at the first BATCH_COMPLETED of every such pair."""
    def batches(run_id: str, rss_mb: float, accuracy: float) -> list[TelemetryEvent]:
        return [TelemetryEvent(run_id, seq, 1000.0 + seq, T.BATCH_COMPLETED, Severity.INFO, seq,
                               None, None, None, None, "",
                               BatchCompletedPayload(accuracy if seq == 2 else 40.0, 0.5, 1,
                                                     rss_mb=rss_mb + seq,
                                                     cuda_allocated_mb=rss_mb / 2,
                                                     cuda_reserved_mb=rss_mb))
                for seq in range(4)]

    with Registry.open(tmp_path / "runs.db") as registry:
        base, twin, other = (registry.create_run(NewRun(experiment="m", config={}, seed=1)).run_id
                             for _ in range(3))
        registry.write_events(batches(base, 837.8, 40.0))
        registry.write_events(batches(twin, 837.75, 40.0))
        registry.write_events(batches(other, 837.75, 41.0))
        assert first_divergence(registry, base, twin).identical
        divergence = first_divergence(registry, base, other)
    assert divergence.seq == 2
    assert [(f.field, f.a, f.b) for f in divergence.fields] == [
        ("data.mean_val_accuracy", 40.0, 41.0)]


@pytest.fixture(scope="module")
def untracked_twins(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """Two real tiny runs of one experiment and seed whose configs differ only in keys that
    cannot change the stream: description, tracking tags and training.replicates."""
    path = tmp_path_factory.mktemp("neutral") / "runs.db"
    document = tiny_document(name="neutral", policy={"type": "random"},
                             training={"envs": 1, "batches": 1, "episode_length": 2})
    base = ("tracking.mlflow=false", "telemetry.probes=[throughput]")
    first = spec_from_dict(document, (*base, "tracking.tags={team: a}", "description=first"))
    second = spec_from_dict(document, (*base, "tracking.tags={team: b, try: '2'}",
                                       "training.replicates=3"))
    return (path, run(first, registry=path).record.run_id,
            run(second, registry=path).record.run_id)


def test_configs_differing_only_in_stream_neutral_keys_get_a_verdict(untracked_twins):
    """Issue 21: compare gave no determinism verdict for these (their config hashes differ)."""
    path, first, second = untracked_twins
    with Registry.open(path, create=False) as registry:
        assert registry.run(first).config_sha256 != registry.run(second).config_sha256
        (divergence,) = compare(registry, [first, second]).divergence
    assert divergence.identical and divergence.events_a == divergence.events_b > 0


@pytest.mark.parametrize("override, neutral", [
    ("name=other", False),  # TRAINING_STARTED carries it (`experiment`)
    ("seed=2", False), ("training.envs=3", False),
    ("description=other", True), ("tracking={mlflow: false, experiment: e}", True),
    ("training.replicates=4", True),
    ("regression={metrics: {final_val_accuracy: {direction: higher, threshold: 1}}}", True),
])
def test_only_the_stream_neutral_keys_are_ignored(override: str, neutral: bool) -> None:
    config = spec_to_dict(spec_from_dict(tiny_document()))
    changed = spec_to_dict(spec_from_dict(tiny_document(), (override,)))
    assert changed != config
    assert same_stream_config(config, changed) is neutral
