"""`esper compare`: resolve the references, compare, render (esper.compare does the work);
``sweep:<id>`` prints the sweep's ranking instead (esper.sweep)."""

from __future__ import annotations

import click

from esper.cli.options import json_option, no_mlflow_option, overrides_option, registry_option
from esper.cli.sweep import print_ranking
from esper.compare.experiments import is_experiment_file
from esper.nissa.console_sink import ConsoleProgressSink
from esper.registry import Registry
from esper.registry.render import console
from esper.registry.render import visible as render_visible

SWEEP_PREFIX = "sweep:"  # esper compare sweep:<id>: the ranking of a sweep (esper.sweep)


@click.command("compare")
@click.argument("refs", nargs=-1, required=True, metavar="REF REF [REF]...")
@registry_option()
@click.option("--all", "show_all", is_flag=True,
              help="Show every row of every section, not only what differs.")
@click.option("--format", "fmt", type=click.Choice(["table", "md", "json", "csv"]),
              default="table", show_default=True)
@json_option("Same as --format json.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False),
              help="Also write learning curves and per-blueprint outcomes to this PNG file.")
@overrides_option("Override a key of every experiment FILE given as a REF (repeatable).")
@no_mlflow_option("Experiment FILEs record to the registry only.")
def compare_command(refs: tuple[str, ...], registry_path: str | None, show_all: bool, fmt: str,
                    as_json: bool, plot_path: str | None, overrides: tuple[str, ...],
                    no_mlflow: bool) -> None:
    """Compare runs or replicate groups: what differs, and is it significant.

    sweep:<id> (alone) ranks the trials of a sweep by its metric, with the config keys that vary.

    Each REF is a run id, a unique id prefix, a run name, group:<id> (the runs of a replicate
    group, from training.replicates), or an experiment FILE.yaml, which is run first (with its
    replicates) and compared as the runs it produced. The first REF is the baseline. Sections:
    config keys that differ, outcome metrics with delta and delta %, replicate statistics (mean
    ± std, 95% CI of the difference: Welch's t below five runs a side, else bootstrap; Welch's
    t-test), seed lifecycle per blueprint and gate failures per check, events by type,
    anomalies, wiring outcomes that differ, and for two runs of the same config and seed
    whether their event streams are identical. Experiment FILEs show their progress on stderr.

    Example:

        \b
        esper compare quickstart-1 quickstart-2 --format md
        esper compare group:3f2a9c01b7e4 group:8d1e5b2a4c70 --plot compare.png
        esper compare sweep:sweep_quickstart-1
        esper compare experiments/seed_telemetry_heuristic.yaml experiments/seed_telemetry.yaml
    """
    from esper.compare import render  # the comparison's libraries: only when one is made
    from esper.compare.experiments import resolve_references
    from esper.compare.plot import check_plot_path, plot_comparison
    from esper.compare.report import compare

    if plot_path is not None:
        check_plot_path(plot_path)  # before any experiment FILE is run
    if len(refs) == 1 and refs[0].startswith(SWEEP_PREFIX):  # the trials of one sweep, ranked
        if fmt in ("md", "csv") or plot_path is not None:  # not silently a table, no PNG
            raise click.UsageError(f"{refs[0]} prints the sweep's ranking as a table or as "
                                   "JSON (--json); --format md, --format csv and --plot "
                                   "compare runs and groups")
        print_ranking(refs[0].removeprefix(SWEEP_PREFIX), registry_path,
                      as_json=as_json or fmt == "json")
        return
    if (overrides or no_mlflow) and not any(is_experiment_file(ref) for ref in refs):
        raise click.UsageError("--set and --no-mlflow apply to experiment FILEs given as REFs, "
                               "and none of the REFs is one (an existing .yaml or .yml file)")
    resolved = resolve_references(
        refs, overrides=overrides, registry=registry_path, mlflow=not no_mlflow,
        progress=lambda line: click.echo(render_visible(line), err=True),
        sinks=lambda spec: [ConsoleProgressSink(spec.training.batches,
                                                spec.training.episode_length,
                                                spec.training.envs)])
    with Registry.open(registry_path, create=False) as registry:
        comparison = compare(registry, resolved, show_all=show_all, labels=list(refs))
        if plot_path:
            plot_comparison(registry, comparison, plot_path)
    fmt = "json" if as_json else fmt
    if fmt == "table":
        console().print(render.to_rich(comparison))
    else:
        click.echo({"md": render.to_markdown, "json": render.to_json,
                    "csv": render.to_csv}[fmt](comparison), nl=fmt == "json")
