"""The closing summary of a run: a stable JSON shape and its terminal rendering."""

from __future__ import annotations

from typing import Any

from esper.experiment.runner import RunResult
from esper.leyline.errors import EsperError
from esper.registry.wiring import FAILING, summary_counts, wiring_rows
from esper.registry.wiring_report import no_opportunity


class WiringFailed(EsperError):
    """Expected telemetry fields were not observed (FAIL), or declared gaps were (XPASS)."""

    exit_code = 1


def run_summary(result: RunResult) -> dict[str, Any]:
    """The summary of a finished run as JSON data (the shape of `esper run --json`)."""
    record, summary = result.record, result.summary
    return {
        "run_id": record.run_id,
        "name": record.name,
        "experiment": record.experiment,
        "status": record.status.value,
        "registry": str(result.registry_path),
        "final_accuracy": list(summary.final_accuracy),
        "final_committed_accuracy": list(summary.final_committed_accuracy),
        "final_host_accuracy": list(summary.final_host_accuracy),
        "mean_episode_return": summary.mean_episode_return,
        "seeds": {"germinated": summary.seeds_germinated, "fossilized": summary.seeds_fossilized,
                  "pruned": summary.seeds_pruned},
        "env_epochs": summary.env_epochs,
        "events": record.event_count,
        "duration_s": record.duration,
        "wiring": summary_counts(result.wiring),
        "wiring_failures": [f"{o.field.label} {o.outcome.value}: {o.reason}"
                            for o in result.wiring if o.outcome in FAILING],
        "wiring_no_opportunity": no_opportunity(wiring_rows(record.run_id, result.wiring)),
    }


def render_summary(data: dict[str, Any]) -> str:
    """The summary as a few human lines."""
    seeds = data["seeds"]
    return "\n".join([
        f"run {data['run_id']} ({data['name']}) {data['status']} in {data['duration_s']:.1f}s",
        f"final val accuracy  {_per_env(data['final_accuracy'])}",
        f"committed model     {_per_env(data['final_committed_accuracy'])} (fossilised seeds only)",
        f"host alone          {_per_env(data['final_host_accuracy'])} (every seed off)",
        f"seeds               {seeds['germinated']} germinated, {seeds['fossilized']} fossilised, "
        f"{seeds['pruned']} pruned",
        f"events recorded     {data['events']} in {data['registry']}",
        "wiring              " + ", ".join(f"{n} {k}" for k, n in data["wiring"].items() if n),
        *(f"  not exercised     {line}" for line in data["wiring_no_opportunity"]),
        f"next                esper show {data['run_id']}",
    ])


def _per_env(accuracies: list[float]) -> str:
    return ", ".join(f"env {i}: {acc:.2f}%" for i, acc in enumerate(accuracies))


def wiring_failure(data: dict[str, Any]) -> WiringFailed:
    """The error naming the fields of a run summary that are FAIL or XPASS."""
    return WiringFailed(
        f"telemetry wiring of run {data['run_id']}: {len(data['wiring_failures'])} field(s) FAIL "
        f"or XPASS (esper wiring {data['run_id']}):\n  " + "\n  ".join(data["wiring_failures"]))
