"""The growth picture of a run: per env, each slot's seed stage over the epochs, with germinate,
fossilise, prune and rollback marks, beside the env's val and committed accuracy.

Drawn from the run's events (EPOCH_COMPLETED for the accuracies and the slot stages, the seed
and governor events for the marks), with matplotlib's Agg canvas and no pyplot. The x axis is the
global epoch (batch x episode length + epoch); its ticks are integers. The MLflow sink logs it as
``plots/growth.png``; ``esper compare --plot`` draws one per side.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from esper.leyline.events import TelemetryEvent, TelemetryEventType as T

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

ARTIFACT = "plots/growth.png"
MAX_ENVS = 4  # envs drawn; a run with more shows its first ones (the title says so)
# stage -> bar colour; DORMANT (an empty slot) is not drawn
STAGE_COLOURS = {"GERMINATED": "#c7e9c0", "TRAINING": "#74c476", "BLENDING": "#6baed6",
                 "HOLDING": "#9e9ac8", "FOSSILIZED": "#525252", "PRUNED": "#fb6a4a",
                 "EMBARGOED": "#fcae91", "RESETTING": "#fee5d9"}
# event -> (marker, colour, legend label)
MARKS = {T.SEED_GERMINATED: ("^", "green", "germinate"),
         T.SEED_FOSSILIZED: ("*", "black", "fossilise"),
         T.SEED_PRUNED: ("x", "red", "prune"),
         T.GOVERNOR_ROLLBACK: ("v", "darkorange", "rollback")}
GROWTH_EVENTS = (T.TRAINING_STARTED, T.EPOCH_COMPLETED, *MARKS)  # what the picture is drawn from


@dataclass
class EnvGrowth:
    """One env's history over the run: per global epoch its accuracies and slot stages, and
    the (global epoch, event type, slot) of each mark."""

    steps: list[int] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    committed_accuracy: list[float | None] = field(default_factory=list)
    stages: dict[str, list[tuple[int, str]]] = field(default_factory=dict)  # slot -> (step, stage)
    marks: list[tuple[int, T, str | None]] = field(default_factory=list)


class GrowthHistory:
    """Collects what the picture shows from a run's events, in arrival order; TRAINING_STARTED
    gives the episode length that places (batch, epoch) on the global epoch axis."""

    def __init__(self) -> None:
        self.episode_length = 0  # 0 until TRAINING_STARTED arrives; then epochs per episode
        self.envs: dict[int, EnvGrowth] = {}

    def add(self, events: Iterable[TelemetryEvent]) -> None:
        for event in events:
            if event.event_type is T.TRAINING_STARTED:
                self.episode_length = event.data.episode_length
            if (event.event_type not in GROWTH_EVENTS or event.env_id is None
                    or event.batch is None or event.epoch is None or not self.episode_length):
                continue
            env = self.envs.setdefault(event.env_id, EnvGrowth())
            step = event.batch * self.episode_length + event.epoch
            if event.event_type is T.EPOCH_COMPLETED:
                data = event.data
                env.steps.append(step)
                env.val_accuracy.append(data.val_accuracy)
                env.committed_accuracy.append(data.committed_accuracy)
                for slot in data.slots:
                    env.stages.setdefault(slot.slot_id, []).append((step, slot.stage))
            else:
                env.marks.append((step, event.event_type, event.slot_id))

    def figure(self, title: str) -> Figure | None:
        """The picture, one row of two panels per env (None when no epoch was recorded)."""
        envs = sorted(e for e, growth in self.envs.items() if growth.steps)[:MAX_ENVS]
        if not envs:
            return None
        from matplotlib.figure import Figure  # ~1 s to import: only when a picture is drawn

        height = 0.9 + 2.6 * len(envs)  # inches: 0.5 below the last row, 0.4 above the first
        figure = Figure(figsize=(11, height), dpi=80)
        figure.subplots_adjust(left=0.07, right=0.85, bottom=0.5 / height, top=1 - 0.4 / height,
                               wspace=0.25, hspace=0.6)
        axes = figure.subplots(len(envs), 2, squeeze=False)
        for (accuracy_ax, stage_ax), env_id in zip(axes, envs):
            draw_env(accuracy_ax, stage_ax, self.envs[env_id], f"env {env_id}",
                     self.episode_length)
        more = len([e for e in self.envs if self.envs[e].steps]) - len(envs)
        figure.suptitle(title + (f" (first {len(envs)} envs; {more} more)" if more else ""),
                        fontsize=11)
        return figure


def draw_env(accuracy_ax: Axes, stage_ax: Axes, env: EnvGrowth, label: str,
             episode_length: int) -> None:
    """Accuracies with the marks (left) and each slot's stage over the epochs (right); a dotted
    line where an episode starts a fresh host."""
    from matplotlib.ticker import MaxNLocator

    _accuracy_panel(accuracy_ax, env, label)
    _stage_panel(stage_ax, env, label)
    starts = sorted({s - s % episode_length for s in env.steps} - {0})
    for ax in (accuracy_ax, stage_ax):
        for start in starts:
            ax.axvline(start - 0.5, color="grey", ls=":", lw=0.8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("global epoch", fontsize=8)
        ax.tick_params(labelsize=7)


def _accuracy_panel(ax: Axes, env: EnvGrowth, label: str) -> None:
    ax.plot(env.steps, env.val_accuracy, color="C0", lw=1.2, label="val accuracy")
    committed = [(s, a) for s, a in zip(env.steps, env.committed_accuracy) if a is not None]
    if committed:
        ax.plot(*zip(*committed), color="C2", lw=1.2, ls="--", label="committed accuracy")
    at = dict(zip(env.steps, env.val_accuracy))
    for event_type, (marker, colour, name) in MARKS.items():
        points = [(s, at[s]) for s, t, _ in env.marks if t is event_type and s in at]
        if points:
            ax.scatter(*zip(*points), marker=marker, color=colour, s=50, zorder=3, label=name)
    ax.set_title(f"{label}: accuracy (%)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, loc="lower right")


def _stage_panel(ax: Axes, env: EnvGrowth, label: str) -> None:
    slots = sorted(env.stages)
    for row, slot in enumerate(slots):
        for start, width, stage in _spans(env.stages[slot]):
            if stage in STAGE_COLOURS:
                ax.broken_barh([(start - 0.5, width)], (row - 0.4, 0.8),
                               facecolors=STAGE_COLOURS[stage])
    for step, event_type, slot in env.marks:
        if slot in env.stages:
            marker, colour, _ = MARKS[event_type]
            ax.scatter([step], [slots.index(slot)], marker=marker, color=colour, s=40, zorder=3)
    ax.set_yticks(range(len(slots)), slots, fontsize=7)
    ax.set_ylim(-0.6, len(slots) - 0.4)
    ax.set_title(f"{label}: seed stage per slot", fontsize=9)
    handles = [_patch(colour, stage) for stage, colour in STAGE_COLOURS.items()]
    ax.legend(handles=handles, fontsize=6, loc="center left", bbox_to_anchor=(1.01, 0.5))


def _spans(stages: Sequence[tuple[int, str]]) -> list[tuple[int, int, str]]:
    """(first step, steps, stage) of each run of one stage on consecutive recorded epochs."""
    spans: list[tuple[int, int, str]] = []
    for step, stage in stages:
        if spans and spans[-1][2] == stage and spans[-1][0] + spans[-1][1] == step:
            start, width, _ = spans[-1]
            spans[-1] = (start, width + 1, stage)
        else:
            spans.append((step, 1, stage))
    return spans


def _patch(colour: str, label: str):
    from matplotlib.patches import Patch

    return Patch(facecolor=colour, label=label.lower())
