"""Hostile experiment files and --set values (issue 20, items 7, 9 and 10): each is refused with
located problems and exit code 2, never a traceback, a hang or minutes of parsing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from esper.cli import cli
from esper.experiment import load
from esper.experiment.loading import MAX_BYTES
from esper.leyline.errors import SpecError

QUICKSTART = Path(__file__).parents[2] / "experiments" / "quickstart.yaml"
DEEP = "[" * 10_000 + "]" * 10_000
HUGE_INT = "9" * 5_000


def validate(*arguments: str) -> str:
    """The output of `esper validate ARGUMENTS`, which must exit 2 with no traceback."""
    result = CliRunner().invoke(cli, ["validate", *arguments])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # no traceback
    return result.output


def problems(tmp_path: Path, text: str | bytes) -> list[str]:
    """The problems `load` reports for a file holding `text`, as printed."""
    path = tmp_path / "hostile.yaml"
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    with pytest.raises(SpecError) as raised:
        load(path)
    return [str(problem) for problem in raised.value.problems]


def test_values_nested_10000_deep_in_a_file_are_one_located_problem(tmp_path):
    path = tmp_path / "deep.yaml"
    path.write_text(f"name: deep\nextra: {DEEP}\n")
    output = validate(str(path))
    # level 65: the 64th bracket (the document's mapping is level 1), after "extra: "
    assert (f"{path}:2:71: (document): values are nested more than 64 levels deep"
            in output.replace("\n", ""))


def test_values_nested_10000_deep_in_a_set_value_name_the_override():
    output = validate(str(QUICKSTART), "--set", f"training.envs={DEEP}")
    first = output.splitlines()[1]
    assert first.startswith("--set training.envs=[[[")  # the override, shortened
    assert "(20,014 characters): training.envs: values are nested more than 64 levels" in first
    assert len(first) < 400


def test_aliases_nesting_values_deeper_than_the_text_are_refused(tmp_path):
    # each anchor holds the previous one 60 levels down: 10,000 levels in 10,000 values
    lines = ["name: aliased", "extra:"]
    for k in range(170):
        inner = f"*a{k - 1}" if k else "1"
        lines.append(f"  a{k}: &a{k} " + "[" * 60 + inner + "]" * 60)
    found = problems(tmp_path, "\n".join(lines) + "\n")
    deep = [p for p in found if "nested more than 64 levels deep" in p]
    assert len(deep) == 1 and deep[0].startswith(f"{tmp_path / 'hostile.yaml'}:")


def test_a_5000_digit_integer_in_a_file_is_a_located_problem(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text(f"name: big\nseed: {HUGE_INT}\n")
    output = validate(str(path))
    assert (f"{path}:2:7: seed: integer '99999999999999999999'...'99999999999999999999' "
            "(5,000 characters) is too large (expected at most 70 characters)"
            in output.replace("\n", ""))


def test_a_5000_digit_integer_in_a_set_value_names_the_override():
    output = validate(str(QUICKSTART), "--set", f"seed={HUGE_INT}")
    assert "(5,005 characters): seed: integer '9999" in output
    assert "is too large (expected at most 70 characters)" in output


def test_integers_beyond_64_bits_are_refused_where_the_schema_sets_no_maximum(tmp_path):
    found = problems(tmp_path, f"name: wide\ntask:\n  max_train: {2**64}\n")
    assert found == [f"{tmp_path / 'hostile.yaml'}:3:14: task.max_train: {2**64} is out of range "
                     "(expected a 64-bit integer, -9223372036854775808 to 9223372036854775807)"]


def test_a_file_over_the_size_limit_is_refused_where_it_crosses_the_limit(tmp_path):
    found = problems(tmp_path, "name: big\n" + "#" * MAX_BYTES + "\n")
    assert found == [f"{tmp_path / 'hostile.yaml'}:2:{MAX_BYTES - 10 + 1}: (document): the "
                     f"experiment file is larger than {MAX_BYTES:,} bytes (expected a few "
                     "thousand bytes of YAML)"]


@pytest.mark.parametrize("command", ["validate", "run"])
def test_a_fifo_is_refused_at_once(tmp_path, command):
    fifo = tmp_path / "experiment.yaml"
    os.mkfifo(fifo)
    # a real process: reading the FIFO blocked forever, which no in-process test survives
    done = subprocess.run(
        [sys.executable, "-c", "from esper.cli import main; main()", command, str(fifo)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.endswith(f"{fifo}: (document): cannot read the experiment file: it is a "
                                "FIFO (named pipe), not a regular file\n")
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(("path", "kind"), [("/dev/null", "a character device"),
                                            (".", "a directory")])
def test_other_files_that_are_not_regular_are_refused(path, kind):
    with pytest.raises(SpecError) as raised:
        load(path)
    assert str(raised.value) == (f"{path}: (document): cannot read the experiment file: it is "
                                 f"{kind}, not a regular file")


LAUGHS = "name: laughs\nextra:\n  a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"  {b}: &{b} [{', '.join([f'*{a}'] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi"))


@pytest.mark.parametrize(("text", "expected"), [
    (LAUGHS, ":3:6: extra: the document holds more than 100,000 values"),  # billion laughs
    (b"name: a\x00b\n", ":1:8: (document): invalid YAML: character #x0000 is not allowed"),
    (b"name: caf\xe9\n", ":1:10: (document): cannot read the experiment file: byte 0xe9"),
    ("name: x\nseed: !!int abc\n", ":2:7: seed: 'abc' is not a valid !!int"),
    ("name: x\ntraining: {envs: !!bool maybe}\n", ":2:18: training.envs: 'maybe' is not a "
     "valid !!bool"),
    ("name: x\ntraining: {envs: !!map x}\n", ":2:18: training.envs: 'x' is not a valid !!map"),
    ("name: x\nseed: '" + "a" * 100_000 + "'\n", ":2:7: seed: expected an integer, got "
     "'aaaaaaaaaaaaaaaaaaaa'...'aaaaaaaaaaaaaaaaaaaa' (100,000 characters)"),
    ("name: x\n" + "k" * 2_000 + ": 1\n", ":2:2001: (document): invalid YAML: could not find "
     "expected ':'"),  # a 2,000-character key: YAML allows 1,024
    ("name: x\n? " + "[" * 5_000 + "]" * 5_000 + "\n: 1\n", ":2:66: (document): values are "
     "nested more than 64 levels deep"),  # in a complex key
], ids=["billion-laughs", "nul-byte", "invalid-utf-8", "int-tag", "bool-tag", "map-tag",
        "huge-string", "huge-key", "deep-key"])
def test_hostile_content_is_a_located_problem(tmp_path, text, expected):
    found = problems(tmp_path, text)
    assert any(expected in problem for problem in found), found
