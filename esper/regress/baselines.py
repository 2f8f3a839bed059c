"""Baselines: the committed values a suite's experiments are checked against.

One JSON file per experiment, `<suite>/baselines/<experiment>.json`: the metric values (None:
not measured) and the wiring outcome of every field that was not SKIP, keyed "TELE-id field".
Keys are sorted and values rounded to `DECIMALS`, so a refreshed baseline differs from the
committed one only where a number or an outcome really changed (small git diffs), and a file
is rewritten only when its content changed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from esper.regress.errors import SuiteError

DECIMALS = 6  # metric values are measured and stored to this many decimals
BASELINE_DIR = "baselines"


@dataclass(frozen=True)
class Baseline:
    """What one experiment of a suite measured when its baseline was recorded."""

    experiment: str
    seed: int  # the first replicate's seed
    replicates: int  # metric values are means over this many runs
    metrics: dict[str, float | None]  # None: not measured
    wiring: dict[str, str]  # "TELE-340 lstm_h_norm" -> PASS / FAIL / XFAIL / XPASS


def rounded(value: float | None) -> float | None:
    """A metric value as baselines store it (None stays None: not measured)."""
    return None if value is None else round(float(value), DECIMALS) + 0.0  # no -0.0


def baseline_path(suite_dir: Path, experiment: str) -> Path:
    """Where the baseline of `experiment` lives in the suite directory `suite_dir`."""
    return suite_dir / BASELINE_DIR / f"{experiment}.json"


def baseline_text(baseline: Baseline) -> str:
    """The stable file content of `baseline`: sorted keys, two-space indent, final newline."""
    return json.dumps(asdict(baseline), indent=2, sort_keys=True) + "\n"


def read_baseline(path: Path) -> Baseline | None:
    """The baseline stored at `path`; None when there is no such file.

    Raises:
        SuiteError: the file is not a baseline (unreadable JSON, keys missing or unexpected).
    """
    if not path.exists():
        return None
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
        baseline = Baseline(**data)
        if not (isinstance(baseline.metrics, dict) and isinstance(baseline.wiring, dict)):
            raise TypeError("metrics and wiring must be objects")
        for name, value in baseline.metrics.items():  # a text here would crash the check
            if value is not None and (isinstance(value, bool)
                                      or not isinstance(value, (int, float))):
                raise TypeError(f"metrics.{name} must be a number or null, got {value!r}")
        for key, outcome in baseline.wiring.items():
            if not isinstance(outcome, str):
                raise TypeError(f"wiring.{key} must be an outcome text, got {outcome!r}")
        return baseline
    except (OSError, ValueError, TypeError) as error:
        raise SuiteError(f"{path}: not a baseline file ({error}); expected the JSON written by "
                         "esper regress --update-baselines, with keys experiment, seed, "
                         "replicates, metrics, wiring") from None


def write_baseline(path: Path, baseline: Baseline) -> bool:
    """Write `baseline` to `path` unless the file already holds exactly that; True if written."""
    text = baseline_text(baseline)
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return True
