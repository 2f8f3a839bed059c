"""sweep: `esper sweep`, trials of one experiment over a search space, each a child run.

- ``plan``: the ``sweep:`` block (and ``--grid``) expanded into validated trial specs;
- ``driver``: the sweep's parent run, one child run per trial, the one writer of ``runs.db``
  and MLflow on this machine;
- ``worker``: what runs a trial wherever the executor puts it, streaming its records back;
- ``local`` / ``ray_executor``: a process pool here, or Ray tasks on a cluster;
- ``ranking``: trials ranked by the sweep metric, with the config keys that vary;
- ``render``: a ranking as JSON data or a table.

The command is ``esper.cli.sweep``.
"""
