"""JsonlSink: one envelope per line, in seq order, appended."""

from __future__ import annotations

import json

from esper.leyline.events import BatchCompletedPayload, TelemetryEventType
from esper.nissa.hub import TelemetryHub
from esper.nissa.jsonl_sink import JsonlSink


def test_every_event_is_one_json_line_with_its_payload(tmp_path):
    path = tmp_path / "events.jsonl"
    with TelemetryHub("run1", [JsonlSink(path)]) as hub:
        for i in range(50):
            payload = BatchCompletedPayload(0.5, float("nan"), i)
            hub.emit(TelemetryEventType.BATCH_COMPLETED, payload, batch=i)
    lines = path.read_text().splitlines()
    assert [json.loads(line)["seq"] for line in lines] == list(range(50))
    first = json.loads(lines[0])
    assert first["event_type"] == "BATCH_COMPLETED" and first["batch"] == 0
    # a NaN is named as in protobuf's JSON mapping: strict JSON, distinct from null
    assert first["data"]["episodes"] == 0 and first["data"]["mean_episode_return"] == "NaN"
