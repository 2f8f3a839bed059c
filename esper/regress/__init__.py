"""regress: `esper regress`, regression experiments checked against committed baselines.

Modules, one job each: ``suite`` (a directory of experiments with ``regression:`` blocks),
``thresholds`` (one metric's rule: MLflow MetricThreshold semantics plus tolerances),
``baselines`` (the committed JSON files), ``measure`` (run an experiment, read its metrics and
wiring), ``wiring_diff`` (wiring against expectations and the baseline), ``runner`` (the suite
run), ``report`` (Markdown / JSON), ``junit`` (JUnit XML). The command is ``esper.cli.regress``.
"""
