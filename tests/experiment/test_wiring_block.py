"""The `wiring:` block: its TELE ids must be in the catalogue, and a block that expects nothing
is warned about, and so is one that expects an id whose probe is off (a typo, one declared
gap, or a probe left off used to switch checks off silently)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from click.testing import CliRunner

from esper.cli import cli
from esper.experiment import load, load_text
from esper.experiment.runner import wiring_warning
from esper.leyline.errors import SpecError

QUICKSTART = str(Path(__file__).resolve().parents[2] / "experiments" / "quickstart.yaml")
TINY = ("training.batches=1", "training.episode_length=2", "training.envs=1")
UNKNOWN = "expected an id of the TELE catalogue (esper/leyline/catalogue.py)"


def problems(text: str, overrides: tuple[str, ...] = ()) -> list[str]:
    with pytest.raises(SpecError) as raised:
        load_text(text, "wired.yaml", overrides)
    return [str(problem) for problem in raised.value.problems]


def test_an_unknown_id_in_the_file_is_located_with_the_closest_id() -> None:
    text = ("name: wired\n"
            "wiring:\n"
            "  expect: [TELE-340, TELE-999, TELE-421]\n"
            "  xfail: {TELE-104: not yet}\n")

    assert problems(text) == [
        f"wired.yaml:3:22: wiring.expect[1]: unknown TELE id 'TELE-999'; {UNKNOWN}",
        f"wired.yaml:3:32: wiring.expect[2]: unknown TELE id 'TELE-421' (did you mean "
        f"'TELE-420'?); {UNKNOWN}",
        f"wired.yaml:4:11: wiring.xfail.TELE-104: unknown TELE id 'TELE-104' (did you mean "
        f"'TELE-114'?); {UNKNOWN}",
    ]


def test_an_unknown_id_in_an_override_names_the_override() -> None:
    assert problems("name: wired\n", ("wiring.expect=[TELE-999]", "wiring.xfail.TELE-421=gap")) == [
        f"--set wiring.expect=[TELE-999]: wiring.expect[0]: unknown TELE id 'TELE-999'; {UNKNOWN}",
        "--set wiring.xfail.TELE-421=gap: wiring.xfail.TELE-421: unknown TELE id 'TELE-421' "
        f"(did you mean 'TELE-420'?); {UNKNOWN}",
    ]


def test_every_catalogue_id_is_accepted() -> None:
    from esper.leyline.catalogue import BY_ID

    spec = load_text(f"name: wired\nwiring:\n  expect: [{', '.join(BY_ID)}]\n", "wired.yaml")

    assert spec.wiring is not None and spec.wiring.expect == tuple(BY_ID)


def test_esper_validate_and_run_reject_an_unknown_expected_id(tmp_path: Path) -> None:
    runner = CliRunner()
    sets = [arg for value in (*TINY, "wiring.expect=[TELE-999]") for arg in ("--set", value)]

    validated = runner.invoke(cli, ["validate", QUICKSTART, *sets])
    ran = runner.invoke(cli, ["run", QUICKSTART, *sets, "--no-mlflow",
                              "--registry", str(tmp_path / "runs.db")])

    message = ("--set wiring.expect=[TELE-999]: wiring.expect[0]: unknown TELE id 'TELE-999'; "
               f"{UNKNOWN}")
    assert validated.exit_code == 2 and message in validated.stderr
    assert ran.exit_code == 2 and message in ran.stderr
    assert not (tmp_path / "runs.db").exists()  # nothing ran


@pytest.mark.parametrize("block, expected", [
    (None, None),
    ("{expect: [TELE-341]}", None),
    ("{expect: [TELE-341], xfail: {TELE-420: gap}}", None),
    ("{xfail: {TELE-420: gap, TELE-341: gap}}",
     "wiring.expect is empty: only wiring.xfail (TELE-420, TELE-341) is checked and every "
     "other field is SKIP; list the ids to check in wiring.expect, or drop the wiring block "
     "to expect every field of every enabled probe"),
    ("{}", "wiring.expect is empty: no field is checked and every field is SKIP; list the ids "
     "to check in wiring.expect, or drop the wiring block to expect every field of every "
     "enabled probe"),
    # an expected id whose probe is off was SKIP without a word: its check silently off
    ("{expect: [TELE-341, TELE-410, TELE-300]}",
     "wiring.expect lists TELE-410 (probe gate_events), TELE-300 (probe ppo) with its producer "
     "off: such a field is SKIP, never checked; add the probe to telemetry.probes (ppo: "
     "policy.type mlp or lstm, with policy.train true), or drop the id from wiring.expect"),
    # lstm_health is on, but TELE-340 is measured inside the PPO update, which a heuristic lacks
    ("{expect: [TELE-340]}",
     "wiring.expect lists TELE-340 (probe ppo) with its producer off: such a field is SKIP, "
     "never checked; add the probe to telemetry.probes (ppo: policy.type mlp or lstm, with "
     "policy.train true), or drop the id from wiring.expect"),
])
def test_a_wiring_block_that_leaves_expectations_unchecked_is_warned_about(
        block: str | None, expected: str | None) -> None:
    text = ("name: wired\ntelemetry: {probes: [lstm_health, slot_health]}\n"
            + ("" if block is None else f"wiring: {block}\n"))

    assert wiring_warning(load_text(text, "wired.yaml")) == expected


def test_esper_run_warns_once_when_one_declared_gap_switches_the_rest_off(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    sets = [arg for value in (*TINY, "training.replicates=2", "wiring.xfail.TELE-420=gap")
            for arg in ("--set", value)]

    with caplog.at_level(logging.WARNING):
        result = CliRunner().invoke(cli, ["run", QUICKSTART, *sets, "--no-mlflow", "-q",
                                          "--registry", str(tmp_path / "runs.db")])

    assert result.exit_code == 0, result.output
    warnings = [record.getMessage() for record in caplog.records
                if record.getMessage().startswith("wiring.expect is empty")]
    assert warnings == [wiring_warning(load(QUICKSTART, ("wiring.xfail.TELE-420=gap",)))]
