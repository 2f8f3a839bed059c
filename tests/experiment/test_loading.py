"""Loading experiments: schema defaults, the typed spec, overrides, YAML details."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import types
import typing
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import esper.leyline.config as config
from esper.compare.outcomes import OUTCOME_METRICS
from esper.experiment import load, load_text, spec_from_dict, spec_to_dict
from esper.experiment.schema import experiment_schema
from esper.leyline.config import ExperimentSpec
from esper.leyline.errors import SpecError

REPO = Path(__file__).resolve().parents[2]


def schema_defaults(schema: dict[str, Any], where: str = "") -> dict[str, Any]:
    """The defaults of every property of an object schema, read from the schema alone."""
    defaults = {}
    for key, child in schema["properties"].items():
        assert "default" in child, f"{where}{key} has no default"
        if child["default"] == {} and "properties" in child:
            defaults[key] = schema_defaults(child, f"{where}{key}.")
        else:
            defaults[key] = child["default"]
    return defaults


def test_an_experiment_with_only_a_name_gets_every_schema_default() -> None:
    schema = experiment_schema()
    properties = {**schema["properties"]}
    del properties["name"]  # required, so it has no default

    spec = spec_from_dict({"name": "x"})

    assert spec_to_dict(spec) == {"name": "x", **schema_defaults({"properties": properties})}


def _unwrap_optional(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (types.UnionType, typing.Union):
        (inner,) = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return inner
    return annotation


def _check_fields(cls: type, schema: dict[str, Any], where: str, seen: set[type]) -> None:
    seen.add(cls)
    fields = {field.name for field in dataclasses.fields(cls)}
    assert fields == set(schema["properties"]), f"{cls.__name__} and schema {where or '(top)'}"
    hints = typing.get_type_hints(cls)
    for name in fields:
        annotation = _unwrap_optional(hints[name])
        if typing.get_origin(annotation) is dict:
            annotation, child = typing.get_args(annotation)[1], schema["properties"][name]
            if dataclasses.is_dataclass(annotation):
                _check_fields(annotation, child["additionalProperties"], f"{where}{name}.*.", seen)
        elif dataclasses.is_dataclass(annotation):
            _check_fields(annotation, schema["properties"][name], f"{where}{name}.", seen)


def test_config_dataclasses_and_schema_have_the_same_keys_both_ways() -> None:
    seen: set[type] = set()

    _check_fields(ExperimentSpec, experiment_schema(), "", seen)

    every_dataclass = {value for value in vars(config).values()
                       if isinstance(value, type) and dataclasses.is_dataclass(value)}
    assert seen == every_dataclass  # no section of the spec escapes the check


def test_set_reads_scalars_lists_and_mappings_as_yaml() -> None:
    spec = spec_from_dict({"name": "x"}, overrides=(
        "training.envs=4", "blueprints=[norm, attention]", "wiring={expect: [TELE-340]}",
        "ppo.target_kl=null", "tracking.mlflow=false", "description='a run: with a colon'"))

    assert spec.training.envs == 4
    assert spec.blueprints == ("norm", "attention")
    assert spec.wiring == config.WiringConfig(expect=("TELE-340",), xfail={})
    assert spec.ppo.target_kl is None
    assert spec.tracking.mlflow is False
    assert spec.description == "a run: with a colon"


def test_overrides_win_over_the_file_and_later_overrides_over_earlier(tmp_path: Path) -> None:
    file = tmp_path / "run.yaml"
    file.write_text("name: run\ntraining:\n  envs: 2\n  batches: 7\nblueprints: [norm]\n")

    spec = load(file, ("training.envs=8", "blueprints=[attention]", "training.envs=16"))

    assert spec.training.envs == 16
    assert spec.training.batches == 7  # the rest of the section stays
    assert spec.blueprints == ("attention",)


def test_packaged_schema_is_the_repository_schema() -> None:
    packaged = resources.files("esper").joinpath("schemas/experiment.schema.json").read_text()
    repository = (REPO / "schemas" / "experiment.schema.json").read_text()

    assert json.loads(packaged) == json.loads(repository)


def test_spec_is_frozen() -> None:
    spec = spec_from_dict({"name": "x"})

    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.training.envs = 3  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.name = "y"  # type: ignore[misc]


def test_date_like_strings_stay_strings() -> None:
    text = ("name: 2024-05-01\ndescription: 2024-05-01 10:30:00\n"
            "tracking:\n  tags:\n    started: 2024-05-01\n")

    spec = load_text(text, "dates.yaml")

    assert spec.name == "2024-05-01"
    assert spec.description == "2024-05-01 10:30:00"
    assert spec.tracking.tags == {"started": "2024-05-01"}


def test_exponent_floats_are_numbers() -> None:
    # YAML 1.1 would read 3e-4 as a string; YAML 1.2 and JSON read a number
    spec = load_text("name: x\nppo:\n  lr: 3e-4\n  adam_eps: 1.0e-8\n  max_grad_norm: 1e1\n", "f")

    assert (spec.ppo.lr, spec.ppo.adam_eps, spec.ppo.max_grad_norm) == (3e-4, 1e-8, 10.0)


def test_keys_are_read_as_written() -> None:
    # `on` and `no` are booleans in YAML 1.1, but a key is always the text the user wrote
    spec = load_text("name: x\ntracking:\n  tags: {on: call, no: v, 1.0: v}\n", "f")

    assert spec.tracking.tags == {"on": "call", "no": "v", "1.0": "v"}


def test_booleans_are_yaml_1_2_true_and_false_only() -> None:
    # issue 21: YAML 1.1 read `description: off` as false ("expected a string, got false")
    text = ("name: x\ndescription: off\npolicy: {type: mlp, train: FALSE}\n"
            "ppo: {normalize_rewards: True}\ntracking: {mlflow: false, tags: {a: yes, b: n, c: On}}\n")

    spec = load_text(text, "f", ("telemetry.probes=[]", "tracking.tags.d=no"))

    assert spec.description == "off"
    assert (spec.policy.train, spec.ppo.normalize_rewards, spec.tracking.mlflow) == (
        False, True, False)
    assert spec.tracking.tags == {"a": "yes", "b": "n", "c": "On", "d": "no"}


def test_integers_and_numbers_keep_their_types() -> None:
    spec = load_text("name: x\ntraining:\n  envs: 4\nppo:\n  gamma: 1\n", "f")

    assert type(spec.training.envs) is int
    assert type(spec.ppo.gamma) is float and spec.ppo.gamma == 1.0
    assert not math.isnan(spec.ppo.lr)


@pytest.mark.parametrize("text, valid", [("2.0", True), ("1e3", True), ("2.5", False)])
def test_esper_and_the_published_schema_agree_on_whole_floats_as_integers(
        text: str, valid: bool) -> None:
    """Draft 2020-12 counts 2.0 as an integer, so any validator of the published schema
    accepts it; esper did not (issue 21). Both accept it now, and the spec holds the int."""
    published = jsonschema.Draft202012Validator(json.loads(
        (REPO / "schemas" / "experiment.schema.json").read_text()))
    document = {"name": "x", "training": {"batches": float(text)}}

    assert published.is_valid(document) is valid
    if valid:
        spec = load_text(f"name: x\ntraining: {{batches: {text}}}\n", "f")
        assert type(spec.training.batches) is int and spec.training.batches == float(text)
    else:
        with pytest.raises(SpecError, match="training.batches: expected an integer, got 2.5"):
            load_text(f"name: x\ntraining: {{batches: {text}}}\n", "f")


def test_the_schema_names_the_outcome_metrics_sweeps_and_regressions_use() -> None:
    properties = experiment_schema()["properties"]
    names = list(OUTCOME_METRICS)

    assert properties["sweep"]["properties"]["metric"]["enum"] == names
    assert properties["regression"]["properties"]["metrics"]["propertyNames"]["enum"] == names


def test_an_unreadable_file_is_one_problem(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as raised:
        load(tmp_path / "missing.yaml")

    (problem,) = raised.value.problems
    assert problem.line is None and problem.path == ""
    assert "cannot read the experiment file" in problem.message


def test_a_config_stored_before_the_signals_section_still_loads():
    """Runs recorded before the host-signal thresholds moved to `signals:` stored them under
    policy.heuristic: rerun and sweep resume read them at their new place. An experiment file
    with the old keys is told where they went instead (corpus file 68)."""
    from esper.experiment import spec_to_dict, stored_spec

    current = spec_to_dict(spec_from_dict({"name": "old", "signals": {"stabilisation_epochs": 7,
                                                                      "plateau_min_gain": 0.25}}))
    stored = copy.deepcopy(current)
    stored["policy"]["heuristic"].update(stored.pop("signals"))  # as an older esper wrote it
    spec = stored_spec(stored)
    assert spec.signals.stabilisation_epochs == 7 and spec.signals.plateau_min_gain == 0.25
    assert spec_to_dict(spec) == current
    assert stored["policy"]["heuristic"]["stabilisation_epochs"] == 7  # the stored row is intact
    with pytest.raises(SpecError, match="moved to signals.stabilisation_epochs"):
        spec_from_dict(stored)


def test_a_config_stored_before_batch_envs_reruns_env_by_env():
    """Runs recorded before `training.batch_envs` stepped their envs one after another: their
    stored config reads as batch_envs false, not the new default, while a stored config that
    has the key keeps it."""
    from esper.experiment import spec_to_dict, stored_spec

    current = spec_to_dict(spec_from_dict({"name": "old"}))
    assert current["training"]["batch_envs"] == "auto"  # the default
    assert stored_spec(current).training.batch_envs == "auto"
    older = copy.deepcopy(current)
    del older["training"]["batch_envs"]  # as an esper before the key wrote it
    assert stored_spec(older).training.batch_envs is False
    assert "batch_envs" not in older["training"]  # the stored row is intact
