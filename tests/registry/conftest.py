from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from esper.registry import Registry


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "runs.db"


@pytest.fixture
def registry(db_path: Path) -> Iterator[Registry]:
    with Registry.open(db_path) as opened:
        yield opened
