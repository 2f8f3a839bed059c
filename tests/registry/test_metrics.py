"""The metrics table's summary (``esper show``): a measured NaN stays NaN, never "not measured"."""

from __future__ import annotations

import math

from rich.console import Console

from esper.registry import Registry
from esper.registry.render import summary_view

from .builders import new_run


def test_a_nan_point_is_summarised_as_nan_not_as_missing(registry: Registry):
    run = registry.create_run(new_run())
    nan = float("nan")
    registry.append_metrics(run.run_id, [
        ("env0/val_loss", 0, 1.0, 1.0), ("env0/val_loss", 1, 0.5, 2.0),
        ("env0/val_loss", 2, nan, 3.0),  # the loss went NaN: SQLite stores a NaN as NULL
        ("ppo/approx_kl", 0, nan, 1.0), ("ppo/grad", 0, math.inf, 1.0),
    ])
    summary = {m.key: m for m in registry.summary(run.run_id).metrics}
    loss = summary["env0/val_loss"]
    assert (loss.count, loss.first_step, loss.last_step, loss.min, loss.max) == (3, 0, 2, 0.5, 1.0)
    assert math.isnan(loss.last)
    kl = summary["ppo/approx_kl"]
    assert kl.count == 1 and all(math.isnan(v) for v in (kl.last, kl.min, kl.max))
    assert summary["ppo/grad"].last == math.inf
    console = Console(record=True, width=200)
    console.print(summary_view(registry.summary(run.run_id)))  # esper show's view
    assert "env0/val_loss" in console.export_text()
