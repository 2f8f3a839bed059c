"""Every package says in one line what it holds: the codenames stay (users of the pipeline know
them), so the first line of each package's docstring is "<name>: what it holds" (issue 23)."""

import ast
from pathlib import Path

import pytest

ESPER = Path(__file__).parents[1] / "esper"
PACKAGES = sorted(init.parent for init in ESPER.rglob("__init__.py")
                  if "__pycache__" not in init.parts)
MAX_FIRST_LINE = 100  # characters


def test_the_package_list_holds_the_codename_packages():
    names = {package.name for package in PACKAGES}
    assert {"esper", "kasmina", "leyline", "nissa", "simic", "tamiyo", "tolaria", "registry",
            "experiment", "compare", "regress", "sweep"} <= names


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: str(p.relative_to(ESPER.parent)))
def test_every_package_docstring_starts_with_one_line_naming_what_it_holds(package):
    docstring = ast.get_docstring(ast.parse((package / "__init__.py").read_text()), clean=False)
    assert docstring, f"{package.name} has no package docstring"
    first, *rest = docstring.split("\n")
    name, colon, holds = first.partition(": ")
    assert (name, colon) == (package.name, ": "), f"expected '{package.name}: ...', got {first!r}"
    assert len(holds.split()) >= 3, f"{package.name}: say what it holds, got {first!r}"
    assert len(first) < MAX_FIRST_LINE, f"{package.name}: {len(first)} characters: {first!r}"
    assert not rest or rest[0] == "", f"{package.name}: a blank line after the summary line"
