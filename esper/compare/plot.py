"""`esper compare --plot FILE.png`: learning curves and per-blueprint seed outcomes, side by side,
and below them one row per side: the growth picture of env 0 of the side's first run (each
slot's stage over the epochs with germinate / fossilise / prune / rollback marks, beside its val
and committed accuracy).

Drawn with matplotlib's Agg backend (no display needed). The curves are the mean val accuracy
over a run's envs at each global epoch (the ``env{N}/val_accuracy`` series); a group's runs are
thin lines under their mean. A NaN accuracy (stored as NULL) is a gap in the curves.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from typing import TYPE_CHECKING

from esper.compare.refs import CompareError
from esper.compare.report import Comparison
from esper.nissa.growth_plot import GROWTH_EVENTS, GrowthHistory, draw_env
from esper.nissa.metric_series import ENV_VAL_ACCURACY
from esper.registry import Registry
from esper.registry.storage import unwritable

if TYPE_CHECKING:
    from matplotlib.axes import Axes

#: The ``env{N}/val_accuracy`` series (not those of a slot, ``env{N}/<slot>/...``), averaged
#: by the registry at each global epoch: None when an env's accuracy is NaN (stored as NULL).
_ENV_KEYS = ENV_VAL_ACCURACY.format(env_id="[0-9]*")
_NOT_ENV_KEYS = "env*/*/*"
_OUTCOMES = ("germinated", "fossilized", "pruned")


def check_plot_path(path: str | os.PathLike[str]) -> None:
    """Raises CompareError when the PNG cannot be written there (checked before any work)."""
    problem = unwritable(path)
    if problem is not None:
        raise CompareError(f"cannot write the plot to {path}: {problem}")


def plot_comparison(registry: Registry, comparison: Comparison,
                    path: str | os.PathLike[str]) -> None:
    """Write the learning curves (left) and the seeds per blueprint and outcome (right) of
    every side of `comparison` to the PNG file `path`."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.ticker import MaxNLocator

    sides = comparison.sides
    fig, axes = plt.subplots(1 + len(sides), 2, figsize=(13, 4.8 + 3.0 * len(sides)),
                             gridspec_kw={"height_ratios": [1.6] + [1.0] * len(sides)},
                             squeeze=False)
    curves, bars = axes[0]
    for index, side in enumerate(comparison.sides):
        colour = f"C{index}"
        series = [{step: math.nan if value is None else value
                   for step, value in registry.mean_by_step(run_id, _ENV_KEYS, _NOT_ENV_KEYS)}
                  for run_id in side.run_ids]
        for points in series if len(series) > 1 else ():
            curves.plot(list(points), list(points.values()), color=colour, alpha=0.25, lw=0.8)
        steps = sorted({step for points in series for step in points})
        means = [sum(p[s] for p in series if s in p) / sum(s in p for p in series) for s in steps]
        curves.plot(steps, means, color=colour, lw=2,
                    label=f"{side.label} ({len(side.run_ids)} run{'s' * (len(side.run_ids) > 1)})")
    curves.set(title="learning curves", xlabel="global epoch (batch x episode length + epoch)",
               ylabel="val accuracy, mean over envs (%)")
    curves.xaxis.set_major_locator(MaxNLocator(integer=True))
    curves.legend(fontsize="small")
    _blueprint_bars(bars, comparison)
    for (accuracy_ax, stage_ax), side in zip(axes[1:], sides):
        _growth_of_first_run(registry, accuracy_ax, stage_ax, side.label, side.run_ids[0])
    fig.tight_layout()
    try:
        fig.savefig(path, format="png", dpi=100)
    except OSError as error:
        raise CompareError(f"cannot write the plot to {path}: {error.strerror}") from None
    finally:
        plt.close(fig)


def _growth_of_first_run(registry: Registry, accuracy_ax: Axes, stage_ax: Axes, label: str,
                         run_id: str) -> None:
    """The growth picture of env 0 of a side's first run (docs: esper.nissa.growth_plot)."""
    history = GrowthHistory()
    history.add(registry.events(run_id, types=GROWTH_EVENTS))
    env = history.envs.get(0)
    if env is None or not env.steps:
        accuracy_ax.text(0.5, 0.5, f"{label}: no epoch recorded", ha="center",
                         transform=accuracy_ax.transAxes)
        stage_ax.set_visible(False)
        return
    draw_env(accuracy_ax, stage_ax, env, f"{label} (run {run_id}, env 0)",
             history.episode_length)


def _blueprint_bars(axes: Axes, comparison: Comparison) -> None:
    """Grouped bars: one group per (blueprint, outcome), one bar per side (seeds per run)."""
    counts: dict[str, list[float]] = defaultdict(lambda: [0.0] * len(comparison.sides))
    for row in comparison.lifecycle:
        outcome, _, blueprint = row.key.partition(" ")
        if outcome in _OUTCOMES:
            counts[f"{blueprint}\n{outcome}"] = [float(v) for v in row.values]
    labels = sorted(counts)
    width = 0.8 / len(comparison.sides)
    for index, side in enumerate(comparison.sides):
        axes.bar([i + index * width for i in range(len(labels))],
                 [counts[label][index] for label in labels], width, label=side.label,
                 color=f"C{index}")
    axes.set_xticks([i + 0.4 - width / 2 for i in range(len(labels))], labels,
                    fontsize="small")
    axes.set(title="seeds per blueprint and outcome (per run)", ylabel="seeds")
    if not labels:
        axes.text(0.5, 0.5, "no seed germinated", ha="center",
                  transform=axes.transAxes)
    axes.legend(fontsize="small")
