"""What `esper validate` reports as differing from the defaults."""

from esper.experiment import load_text
from esper.experiment.config_diff import ChangedKey, changed_from_defaults


def test_a_filled_default_mapping_is_its_keys_not_a_missing_key() -> None:
    spec = load_text("name: tagged\n"
                     "tracking: {tags: {team: vision}}\n"
                     "wiring: {expect: [TELE-340], xfail: {TELE-420: gap}}\n", "tagged.yaml")

    changed = changed_from_defaults(spec)

    assert ChangedKey("tracking.tags.team", "vision", None) in changed
    assert ChangedKey("wiring.xfail.TELE-420", "gap", None) in changed
    assert [c.key for c in changed if c.key in ("tracking.tags", "wiring.xfail")] == []


def test_an_experiment_of_defaults_differs_in_nothing() -> None:
    plain = load_text("name: plain\ntracking: {tags: {}}\n", "plain.yaml")

    assert changed_from_defaults(plain) == []
