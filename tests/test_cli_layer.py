"""The command line is one package, `esper.cli`, over click-free libraries (issue 23): compare,
regress and sweep are libraries the commands call, and each shared option is defined once."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ESPER = Path(__file__).parents[1] / "esper"


def _imported(path: Path) -> set[str]:
    """The top-level names of the modules `path` imports, wherever in the file."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", ["compare", "regress", "sweep"])
def test_the_libraries_under_the_commands_do_not_import_click(package: str) -> None:
    sources = sorted((ESPER / package).rglob("*.py"))
    assert sources
    clicky = [str(p.relative_to(ESPER)) for p in sources if "click" in _imported(p)]
    # (click may still be loaded: sqlite-utils, under the registry, imports it)
    assert clicky == [], f"click belongs in esper/cli/, not in {clicky}"


@pytest.mark.parametrize("flag", ['"--registry"', '"--set"', '"--json"', '"--no-mlflow"'])
def test_a_shared_option_is_defined_once(flag: str) -> None:
    defining = [str(p.relative_to(ESPER)) for p in sorted(ESPER.rglob("*.py"))
                if flag in p.read_text(encoding="utf-8")]
    assert defining == ["cli/options.py"], defining
