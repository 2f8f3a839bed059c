"""The learning-curve plot of a run, drawn from its metric points with matplotlib's Agg canvas.

Panels: validation accuracy per env, train / validation loss per env (step = global epoch),
episode return per env and its batch mean, and the PPO losses when a PPO policy ran (step =
batch; a per-batch panel is left out when the run has one batch). Ticks are integers. Only the points of these series are kept: a few floats per env and epoch.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from esper.nissa.metric_series import EPISODE_RETURN, MetricPoint

if TYPE_CHECKING:
    from matplotlib.figure import Figure

ARTIFACT = "plots/learning_curves.png"

# (panel title, x label, the (prefix, suffix) of the keys it shows)
_PANELS = (
    ("validation accuracy (%)", "global epoch", (("env", "/val_accuracy"),)),
    ("loss: train (solid), validation (dashed)", "global epoch",
     (("env", "/train_loss"), ("env", "/val_loss"))),
    ("episode return", "batch", (("env", "/episode_return"), (EPISODE_RETURN, ""))),
    ("PPO losses", "batch", (("ppo/policy_loss", ""), ("ppo/value_loss", ""))),
)


def _panel(key: str) -> int | None:
    for index, (_, _, patterns) in enumerate(_PANELS):
        if any(key.startswith(prefix) and key.endswith(suffix) for prefix, suffix in patterns):
            return index
    return None


def _color(key: str) -> str | None:
    """One colour per env in every panel, black for the mean return; None: matplotlib's cycle."""
    head = key.partition("/")[0]
    if head.startswith("env"):
        return f"C{int(head[3:]) % 10}"
    return "black" if key == EPISODE_RETURN else None


class LearningCurves:
    """Collects the plotted series from metric points, in arrival order."""

    def __init__(self) -> None:
        self._series: dict[str, tuple[list[int], list[float]]] = {}

    def add(self, points: Iterable[MetricPoint]) -> None:
        for point in points:
            if _panel(point.key) is None:
                continue
            steps, values = self._series.setdefault(point.key, ([], []))
            steps.append(point.step)
            values.append(point.value)

    def figure(self, title: str) -> Figure | None:
        """The plot (None when no plotted series has a point). No pyplot: no global state."""
        if not self._series:
            return None
        from matplotlib.figure import Figure  # ~1 s to import: only when a run ends
        from matplotlib.ticker import MaxNLocator

        # a per-batch panel of one batch is a single dot per line: it shows nothing
        used = sorted({_panel(key) for key, (steps, _) in self._series.items()
                       if _PANELS[_panel(key)][1] != "batch" or len(set(steps)) > 1})
        if not used:
            return None
        rows = (len(used) + 1) // 2
        # Fixed margins and legend corner: constrained layout and loc="best" search the text
        # extents and cost ~1 s per plot, the bulk of the MLflow sink's work in a short run.
        figure = Figure(figsize=(6.5 * min(len(used), 2), 4.0 * rows), dpi=80)
        figure.subplots_adjust(left=0.08, right=0.98, bottom=0.1 / rows, top=1 - 0.12 / rows,
                               wspace=0.2, hspace=0.4)
        axes = figure.subplots(rows, min(len(used), 2), squeeze=False).flat
        for index, ax in zip(used, axes):  # used first: zip takes no extra axis
            name, xlabel, _ = _PANELS[index]
            for key, (steps, values) in sorted(self._series.items()):
                if _panel(key) == index:
                    dashed = key.endswith("/val_loss")
                    ax.plot(steps, values, "--" if dashed else "-", label=key, color=_color(key),
                            linewidth=2.0 if key == EPISODE_RETURN else 1.0,
                            marker="o" if index >= 2 else None, markersize=3)
            ax.set_title(name, fontsize=10)
            ax.set_xlabel(xlabel)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs and batches
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7, loc="upper right")
        for ax in list(axes):  # an odd number of panels leaves one empty
            ax.set_visible(False)
        figure.suptitle(title, fontsize=11)
        return figure
