"""`plot_comparison` on runs whose val accuracy is NaN at an epoch (SQLite keeps it as NULL)."""

from __future__ import annotations

import matplotlib.image

from esper.compare.plot import plot_comparison
from esper.compare.report import compare
from esper.registry import Registry
from tests.compare.test_outcomes import _record


def test_a_nan_val_accuracy_is_a_gap_not_a_crash(tmp_path):
    target = tmp_path / "nan.png"
    with Registry.open(tmp_path / "runs.db") as registry:
        run_a, run_b = _record(registry, lambda: None), _record(registry, lambda: None)
        assert registry.query(  # the case: epoch 1 of env 0 measured NaN
            "SELECT value FROM metrics WHERE run_id = ? AND key = 'env0/val_accuracy' "
            "AND step = 1", [run_a]) == [(None,)]
        plot_comparison(registry, compare(registry, [run_a, run_b]), target)
    height, width, _ = matplotlib.image.imread(target).shape
    assert width > height > 200
