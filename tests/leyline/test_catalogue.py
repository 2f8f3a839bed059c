"""The TELE catalogue against what the code emits, both ways."""

from collections import Counter

from esper.leyline.catalogue import BY_ID, CATALOGUE, payload_paths
from esper.leyline.events import PAYLOAD_TYPES


def test_every_payload_field_of_every_event_type_is_catalogued():
    catalogued = {(f.event_type, f.path) for f in CATALOGUE}
    missing = [(t.name, path) for t, cls in PAYLOAD_TYPES.items() for path in payload_paths(cls)
               if (t, path) not in catalogued]
    assert missing == [], f"uncatalogued telemetry fields: {missing}"


def test_every_catalogued_field_exists_in_its_payload():
    unknown = [(f.event_type.name, f.path) for f in CATALOGUE
               if f.path not in payload_paths(PAYLOAD_TYPES[f.event_type])]
    assert unknown == []


def test_tele_340_is_the_lstm_health_group():
    assert [f.name for f in BY_ID["TELE-340"]] == [
        "lstm_h_norm", "lstm_c_norm", "lstm_h_max", "lstm_c_max", "lstm_has_nan", "lstm_has_inf"]
    assert {f.probe for f in BY_ID["TELE-340"]} == {"lstm_health"}


def test_names_are_unique_and_each_group_has_one_producer():
    assert not [n for n, c in Counter(f.name for f in CATALOGUE).items() if c > 1]
    assert all(len({f.probe for f in fields}) == 1 for fields in BY_ID.values())
