"""compare: `esper compare`, what differs between runs or replicate groups and how significantly.

Modules, one job each: ``refs`` (run references and ``group:<id>``), ``outcomes`` (named outcome
metrics of one run), ``lifecycle`` (seed lifecycle, event and anomaly counts, wiring),
``divergence`` (first differing event of two runs), ``statistics`` (group statistics),
``report`` (the comparison of several sides), ``render`` (table / md / json / csv), ``plot``,
``experiments`` (experiment files as references, run first: ``resolve_references``). The
command is ``esper.cli.compare``.
"""
