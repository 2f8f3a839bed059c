"""The malformed-experiment corpus (issue 2): every problem of a file is reported at once,
each at its exact line and column (or override), key path, and with a useful message.

Each file in malformed/ declares what `load` must report in its leading comment lines
(a file that cannot hold comments, like the empty one, declares them in NAME.expect):

    # set: ppo.lrr=3                                  an override to pass (repeatable)
    # error: 4:3 training.envz: did you mean 'envs'   LINE:COL PATH: message fragment
    # error: --set ppo.lrr=3 ppo.lrr: unknown key     an override's problem, by its source

PATH is the dotted key path, `-` for the document itself. The set of (where, path) pairs
must match the problems exactly: nothing missing, nothing extra.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from esper.cli import cli
from esper.experiment import load
from esper.leyline.errors import SpecError, SpecProblem

CORPUS = Path(__file__).parent / "malformed"
EXPERIMENTS = Path(__file__).parents[2] / "experiments"
FILES = sorted(CORPUS.glob("*.yaml"))


@dataclass(frozen=True)
class Expected:
    """One declared problem."""

    where: str  # "LINE:COL", or "--set KEY=VALUE" for an override
    path: str  # dotted key path, "" for the document
    fragment: str  # must appear in the message


@dataclass(frozen=True)
class Header:
    """What a corpus file declares."""

    overrides: tuple[str, ...]
    errors: tuple[Expected, ...]


def read_header(file: Path) -> Header:
    """The `# set:` and `# error:` lines at the top of `file` (or of its .expect sidecar)."""
    sidecar = file.with_suffix(".expect")
    text = (sidecar if sidecar.exists() else file).read_text(encoding="utf-8")
    overrides: list[str] = []
    errors: list[Expected] = []
    for line in text.splitlines():
        directive, _, rest = line.partition(": ")
        if directive == "# set":
            overrides.append(rest)
        elif directive == "# error":
            errors.append(_expected(rest, overrides))
        else:
            break
    return Header(tuple(overrides), tuple(errors))


def _expected(text: str, overrides: list[str]) -> Expected:
    sources = [f"--set {override}" for override in overrides]
    where = next((source for source in sources if text.startswith(f"{source} ")), None)
    if where is None:
        where, _, rest = text.partition(" ")
    else:
        rest = text[len(where) + 1:]
    path, separator, fragment = rest.partition(": ")
    assert separator and fragment, f"malformed '# error:' line: {text!r}"
    return Expected(where, "" if path == "-" else path, fragment)


def where(problem: SpecProblem) -> str:
    """`LINE:COL` for a problem in the file, its source for an override's problem."""
    return problem.source if problem.line is None else f"{problem.line}:{problem.column}"


def problems_of(file: Path, overrides: tuple[str, ...]) -> list[SpecProblem]:
    with pytest.raises(SpecError) as raised:
        load(file, overrides)
    return raised.value.problems


@pytest.mark.parametrize("file", FILES, ids=[file.name for file in FILES])
def test_every_problem_is_reported_where_it_is(file: Path) -> None:
    header = read_header(file)
    assert header.errors, f"{file.name} declares no '# error:' line"

    problems = problems_of(file, header.overrides)

    report = "\n".join(str(problem) for problem in problems)
    found = {(where(problem), problem.path): problem for problem in problems}
    assert len(found) == len(problems), f"two problems at one place:\n{report}"
    declared = {(error.where, error.path) for error in header.errors}
    assert set(found) == declared, f"reported:\n{report}"
    for error in header.errors:
        message = found[error.where, error.path].message
        assert error.fragment in message, f"{error.where} {error.path or '-'}: {message}"
    for problem in problems:
        in_file = problem.source == str(file) and problem.line is not None
        assert in_file or problem.source.startswith("--set "), str(problem)


def test_corpus_has_at_least_30_files() -> None:
    assert len(FILES) >= 30


def test_several_files_report_several_problems_at_once() -> None:
    counts = [len(read_header(file).errors) for file in FILES]
    assert sum(1 for count in counts if count >= 2) >= 10
    assert max(counts) >= 3


CLI_FILES = [
    "02_misspelt_keys_depth_2.yaml",
    "21_duplicate_nested_keys.yaml",
    "25_unclosed_quote.yaml",
    "31_python_object_top_level.yaml",
    "46_override_into_scalar.yaml",
    "65_sweep_and_regression_blocks.yaml",  # what esper sweep / esper regress check, at once
]


@pytest.mark.parametrize("name", CLI_FILES)
def test_validate_reports_each_problem_as_one_line_and_exits_2(name: str) -> None:
    file = CORPUS / name
    header = read_header(file)
    arguments = ["validate", str(file)]
    for override in header.overrides:
        arguments += ["--set", override]
    runner = CliRunner()

    with runner.isolated_filesystem():
        result = runner.invoke(cli, arguments)
        written = os.listdir(".")

    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert f"invalid experiment ({len(header.errors)} problem" in result.stderr
    for error in header.errors:
        source = error.where if error.where.startswith("--set ") else f"{file}:{error.where}"
        assert f"{source}: {error.path or '(document)'}: " in result.stderr
    assert result.stdout == ""
    assert written == []  # a file that fails writes nothing: no runs.db, no mlflow.db


def test_validate_reports_every_file_of_several() -> None:
    files = [CORPUS / "01_misspelt_top_level_key.yaml", CORPUS / "37_cifar10_without_data_dir.yaml"]

    result = CliRunner().invoke(cli, ["validate", *map(str, files)])

    assert result.exit_code == 2
    assert f"{files[0]}:7:1: traning: unknown key 'traning'" in result.stderr
    assert f"{files[1]}:4:12: task.dataset: dataset 'cifar10' needs task.data_dir" in result.stderr


def test_validate_json_lists_invalid_files_with_their_problems() -> None:
    bad, good = CORPUS / "01_misspelt_top_level_key.yaml", EXPERIMENTS / "quickstart.yaml"

    result = CliRunner().invoke(cli, ["validate", "--json", str(bad), str(good)])

    assert result.exit_code == 2
    first, second = json.loads(result.stdout)
    assert first["file"] == str(bad) and first["valid"] is False
    (problem,) = first["problems"]
    assert problem.startswith(f"{bad}:7:1: traning: unknown key 'traning' (did you mean ")
    assert second["file"] == str(good) and second["valid"] is True and second["config"]
