"""Baseline files: stable text, round trip, rewritten only when their content changed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from esper.regress.baselines import (Baseline, baseline_path, baseline_text, read_baseline,
                                     rounded, write_baseline)
from esper.regress.errors import SuiteError

REPO = Path(__file__).resolve().parents[2]


def baseline(**metrics: float | None) -> Baseline:
    return Baseline("tiny", 3, 1, dict(metrics), {"TELE-340 lstm_h_norm": "PASS",
                                                 "TELE-100 start_seed": "PASS"})


def test_text_is_sorted_indented_and_ends_with_a_newline() -> None:
    text = baseline_text(baseline(z=1.5, a=None))
    assert text.endswith("}\n")
    data = json.loads(text)
    assert list(data) == ["experiment", "metrics", "replicates", "seed", "wiring"]
    assert list(data["metrics"]) == ["a", "z"] and data["metrics"]["a"] is None
    assert list(data["wiring"]) == ["TELE-100 start_seed", "TELE-340 lstm_h_norm"]
    assert '\n  "metrics": {\n    "a": null,' in text


def test_values_are_rounded_and_none_stays_none() -> None:
    assert rounded(61.123456789) == 61.123457
    assert rounded(-1e-9) == 0.0 and str(rounded(-1e-9)) == "0.0"
    assert rounded(None) is None


def test_round_trip_and_absent_file(tmp_path: Path) -> None:
    path = baseline_path(tmp_path, "tiny")
    assert path == tmp_path / "baselines" / "tiny.json"
    assert read_baseline(path) is None
    assert write_baseline(path, baseline(acc=60.5, loss=None))
    assert read_baseline(path) == baseline(acc=60.5, loss=None)


def test_rewritten_only_when_the_content_changed(tmp_path: Path) -> None:
    path = baseline_path(tmp_path, "tiny")
    write_baseline(path, baseline(acc=60.5))
    before = path.stat().st_mtime_ns
    assert not write_baseline(path, baseline(acc=60.5))
    assert path.stat().st_mtime_ns == before
    assert write_baseline(path, baseline(acc=61.0))
    assert read_baseline(path) == baseline(acc=61.0)


@pytest.mark.parametrize("content", ["{not json", '{"experiment": "tiny"}', "[1, 2]",
                                     '{"experiment": "t", "seed": 1, "replicates": 1, '
                                     '"metrics": [], "wiring": {}}',
                                     '{"experiment": "t", "seed": 1, "replicates": 1, '
                                     '"metrics": {"acc": "30"}, "wiring": {}}',
                                     '{"experiment": "t", "seed": 1, "replicates": 1, '
                                     '"metrics": {"acc": true}, "wiring": {}}',
                                     '{"experiment": "t", "seed": 1, "replicates": 1, '
                                     '"metrics": {}, "wiring": {"TELE-340 x": 1}}'])
def test_a_file_that_is_not_a_baseline_is_a_clear_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(SuiteError, match=r"bad\.json: not a baseline file .*expected the JSON "
                                         r"written by esper regress --update-baselines"):
        read_baseline(path)


def test_the_committed_baselines_are_in_the_stable_format() -> None:
    files = sorted((REPO / "experiments" / "regression" / "baselines").glob("*.json"))
    assert files
    for path in files:
        stored = read_baseline(path)
        assert stored is not None and path.read_text() == baseline_text(stored), path
