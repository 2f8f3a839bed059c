"""NaN and infinities in stored payloads (issue 20, item 11): valid JSON that SQLite's JSON
functions and strict parsers accept, named "NaN", "Infinity", "-Infinity" (protobuf's JSON
mapping) so a measured NaN stays distinct from null, and read back as floats."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from esper.cli import cli
from esper.leyline.events import (
    GovernorRollbackPayload,
    SeedStageChangedPayload,
    TelemetryEventType,
)
from esper.nissa.hub import TelemetryHub
from esper.nissa.registry_sink import RegistrySink
from esper.registry import Registry

from .builders import new_run

_T = TelemetryEventType


def strict_loads(text: str) -> object:
    """json.loads that refuses the NaN / Infinity tokens, as strict JSON parsers do."""
    def refuse(token: str) -> object:
        raise ValueError(f"not JSON: {token}")
    return json.loads(text, parse_constant=refuse)


def record(registry: Registry) -> str:
    """A run whose hub records a NaN, an infinity, a minus infinity and a None; its id."""
    run = registry.create_run(new_run())
    with TelemetryHub(run.run_id, [RegistrySink(registry)]) as hub:
        hub.emit(_T.GOVERNOR_ROLLBACK, GovernorRollbackPayload("nan_loss", math.nan, 1))
        hub.emit(_T.GOVERNOR_ROLLBACK, GovernorRollbackPayload("loss_spike", math.inf, 0))
        hub.emit(_T.GOVERNOR_ROLLBACK, GovernorRollbackPayload("NaN", -math.inf, 0))
        hub.emit(_T.SEED_STAGE_CHANGED, SeedStageChangedPayload("TRAINING", "BLENDING"))
    return run.run_id


def test_stored_payloads_are_json_that_sqlite_reads(registry: Registry):
    run_id = record(registry)
    rows = registry.query(
        "SELECT json_valid(data), json_extract(data, '$.val_loss'),"
        " json_type(data, '$.gradient_health') FROM events WHERE run_id = ? ORDER BY seq",
        [run_id])
    assert [tuple(row) for row in rows] == [
        (1, "NaN", None), (1, "Infinity", None), (1, "-Infinity", None), (1, None, "null"),
    ]


def test_payloads_read_back_as_floats_and_none_stays_none(registry: Registry):
    run_id = record(registry)
    back = [e.data for e in registry.events(run_id)]
    assert math.isnan(back[0].val_loss)
    assert back[1].val_loss == math.inf and back[2].val_loss == -math.inf
    assert back[2].reason == "NaN"  # a str field holding "NaN" stays a string
    assert back[3].gradient_health is None  # not measured, not NaN


def test_events_jsonl_lines_parse_with_a_strict_parser(registry: Registry, db_path: Path):
    run_id = record(registry)
    result = CliRunner().invoke(
        cli, ["events", run_id, "--registry", str(db_path), "--format", "jsonl"])
    assert result.exit_code == 0, result.output
    data = [strict_loads(line)["data"] for line in result.output.splitlines()]
    assert [d.get("val_loss") for d in data[:3]] == ["NaN", "Infinity", "-Infinity"]
    assert data[3]["gradient_health"] is None


@pytest.mark.parametrize(("token", "check"), [("NaN", math.isnan),
                                              ("Infinity", lambda v: v == math.inf),
                                              ("-Infinity", lambda v: v == -math.inf)])
def test_payloads_stored_by_older_versions_with_bare_tokens_still_read(
        registry: Registry, token, check):
    run_id = record(registry)
    registry._db.conn.execute(  # as esper wrote a NaN before issue 20
        "UPDATE events SET data = ? WHERE run_id = ? AND seq = 0",
        [f'{{"reason":"nan_loss","val_loss":{token},"seeds_pruned":1}}', run_id])
    registry._db.conn.commit()
    first = next(iter(registry.events(run_id)))
    assert check(first.data.val_loss)
