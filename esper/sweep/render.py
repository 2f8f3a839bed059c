"""A sweep's ranking shown: JSON data, or a rich table (`esper sweep`, `esper compare sweep:`)."""

from __future__ import annotations

import json
from typing import Any

from rich.table import Table

from esper.experiment.config_diff import flatten
from esper.registry import render
from esper.sweep.ranking import Ranking


def ranking_to_dict(ranking: Ranking) -> dict[str, Any]:
    """The ranking as JSON data: the sweep, its metric, the varying keys, the trials."""
    return {
        "sweep": render.run_to_dict(ranking.sweep),
        "metric": ranking.metric,
        "goal": ranking.goal,
        "varying": list(ranking.varying),
        "trials": [{"rank": rank, "trial": t.index, "params": t.params, "value": t.value,
                    "status": t.status.value, "runs": [r.run_id for r in t.runs]}
                   for rank, t in enumerate(ranking.trials, 1)],
    }


def ranking_table(ranking: Ranking) -> Table:
    """Rank, trial, status, metric value, runs, and one column per varying config key."""
    table = Table(title=f"sweep {ranking.sweep.name} ({ranking.sweep.run_id}): "
                        f"{ranking.metric}, {ranking.goal}")
    for column in ("rank", "trial", "status", ranking.metric, "runs", *ranking.varying):
        table.add_column(column)
    for rank, trial in enumerate(ranking.trials, 1):
        configs = [flatten(dict(r.config)) for r in trial.runs]
        table.add_row(str(rank), f"t{trial.index}", trial.status.value,
                      "-" if trial.value is None else f"{trial.value:.4g}",
                      " ".join(r.run_id for r in trial.runs),
                      *(" ".join(sorted({json.dumps(c.get(k)) for c in configs}))
                        for k in ranking.varying))
    return table
