"""The growth picture (esper.nissa.growth_plot) of a real growing run: what it collects from the
events, the figure it draws, and the rows `esper compare --plot` adds per side."""

from __future__ import annotations

import matplotlib.image
import pytest

from esper.compare.plot import plot_comparison
from esper.compare.report import compare
from esper.leyline.events import TelemetryEventType as T
from esper.nissa.growth_plot import MARKS, GrowthHistory
from esper.registry import Registry
from tests.simic.probes.env_runs import record_run

LENGTH = 14


@pytest.fixture(scope="module")
def grown(tmp_path_factory):
    """growing_spec, 2 envs x 2 batches: each env germinates and fossilises a seed per episode."""
    return record_run(tmp_path_factory.mktemp("grown"), [],
                      training={"envs": 2, "batches": 2, "episode_length": LENGTH})


def test_the_history_holds_every_epoch_stage_and_mark_of_each_env(grown):
    history = GrowthHistory()
    history.add(grown.events)
    assert history.episode_length == LENGTH and sorted(history.envs) == [0, 1]
    for env_id, env in history.envs.items():
        epochs = [e for e in grown.of(T.EPOCH_COMPLETED) if e.env_id == env_id]
        assert env.steps == [e.batch * LENGTH + e.epoch for e in epochs]
        assert env.val_accuracy == [e.data.val_accuracy for e in epochs]
        assert env.committed_accuracy == [e.data.committed_accuracy for e in epochs]
        assert env.stages["r0c1"] == [(e.batch * LENGTH + e.epoch, e.data.slots[0].stage)
                                      for e in epochs]
        marks = [e for e in grown.of(*MARKS) if e.env_id == env_id]
        assert env.marks == [(e.batch * LENGTH + e.epoch, e.event_type, e.slot_id) for e in marks]
        kinds = [t for _, t, _ in env.marks]
        assert kinds.count(T.SEED_GERMINATED) == kinds.count(T.SEED_FOSSILIZED) == 2


def test_the_figure_has_a_row_per_env_with_integer_epoch_ticks(grown):
    history = GrowthHistory()
    history.add(grown.events)
    figure = history.figure("grown")
    axes = figure.get_axes()
    assert [ax.get_title() for ax in axes if ax.get_visible()] == [
        "env 0: accuracy (%)", "env 0: seed stage per slot",
        "env 1: accuracy (%)", "env 1: seed stage per slot"]
    for ax in axes:
        ticks = ax.get_xticks()
        assert len(ticks) > 2 and all(t == int(t) for t in ticks)
    accuracy = axes[0]
    labels = accuracy.get_legend_handles_labels()[1]
    assert labels == ["val accuracy", "committed accuracy", "germinate", "fossilise"]


def test_nothing_to_draw_is_no_figure():
    assert GrowthHistory().figure("empty") is None


def test_compare_plot_adds_the_growth_of_each_sides_first_run(tmp_path):
    """Two sides: the learning curves and bars row, then one growth row per side (13 x 10.8 in
    at 100 dpi), drawn from the runs' events in the registry."""
    short = {"envs": 1, "batches": 1, "episode_length": 6}
    run_a = record_run(tmp_path, [], training=short).result.record.run_id
    run_b = record_run(tmp_path, [], training=short).result.record.run_id
    target = tmp_path / "cmp.png"
    with Registry.open(tmp_path / "runs.db") as registry:
        plot_comparison(registry, compare(registry, [run_a, run_b]), target)
    height, width, _ = matplotlib.image.imread(target).shape
    assert (width, height) == (1300, 1080)


def test_the_learning_curves_leave_out_a_one_batch_return_panel_and_tick_integers(grown):
    """A run of one batch has one episode-return point per env: a dot, not a curve."""
    from esper.nissa.learning_curves import LearningCurves
    from esper.nissa.metric_series import MetricMapper

    one_batch = [e for e in grown.events if e.batch in (None, 0)]
    curves = LearningCurves()
    curves.add(MetricMapper().points(one_batch))
    titles = [ax.get_title() for ax in curves.figure("one").get_axes() if ax.get_visible()]
    assert "episode return" not in titles and "validation accuracy (%)" in titles
    curves = LearningCurves()
    curves.add(MetricMapper().points(grown.events))  # two batches: the panel is drawn
    axes = [ax for ax in curves.figure("two").get_axes() if ax.get_visible()]
    assert "episode return" in [ax.get_title() for ax in axes]
    assert all(t == int(t) for ax in axes for t in ax.get_xticks())
