"""Issue 23: the SQL over runs.db lives in esper/registry; compare asks the registry through
named queries (esper.registry.queries, Registry's methods) and opens no connection itself."""

from __future__ import annotations

import re
from pathlib import Path

import esper.compare

#: What SQL written in compare would show: a statement keyword, a JSON or GLOB function of
#: SQLite, the registry's raw-query escape hatch, a connection of its own.
_SQL = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|WHERE|GROUP BY|ORDER BY|GLOB|json_extract"
                  r"|json_each|json_remove|json_valid|rowid)\b|\.query\(|\.execute\(|sqlite3"
                  r"|registry\.connection|connect\(")


def test_compare_writes_no_sql():
    found = [f"{path.name}:{number}: {line.strip()}"
             for path in sorted(Path(esper.compare.__file__).parent.glob("*.py"))
             for number, line in enumerate(path.read_text().splitlines(), 1)
             if _SQL.search(line)]
    assert not found, "SQL in esper/compare (ask the registry instead):\n" + "\n".join(found)
