"""Frozen evaluation (`policy.train: false`): a trained checkpoint acts on chosen seeds with no
PPO update, recorded as an ordinary run tagged as an evaluation."""

from __future__ import annotations

import os

import pytest
import torch
import yaml
from click.testing import CliRunner
from mlflow import MlflowClient

from esper.cli import cli
from esper.experiment.runner import (TAG_EVALUATED_CHECKPOINT, TAG_EVALUATION, RunResult,
                                     run)
from esper.leyline.events import TelemetryEvent, TelemetryEventType as T
from esper.registry import Registry, RunStatus
from esper.registry.wiring import Outcome
from esper.simic.ppo_policy import PPOPolicy
from tests.spec_factory import tiny_document, tiny_spec

# the probes measured inside the PPO update, and lstm_health's rollout part
PROBES = ["lstm_health", "head_grad_norms", "gradient_drift", "anomalies"]
LSTM = {"type": "lstm", "feature_dim": 16, "hidden_dim": 16}
SECTIONS = {"training": {"envs": 2, "batches": 2, "episode_length": 3},
            "task": {"dataset": "digits", "max_train": 128, "max_val": 64, "batch_size": 64},
            "telemetry": {"probes": PROBES}, "tracking": {"mlflow": False}}


def lstm_spec(seed: int, mlflow: bool = False, **policy: object):
    return tiny_spec(seed=seed, policy={**LSTM, **policy},
                     **{**SECTIONS, "tracking": {"mlflow": mlflow}})


def frozen_spec(checkpoint: str, mlflow: bool = False):
    return lstm_spec(101, mlflow, train=False, init_from=checkpoint)


def events_of(result: RunResult) -> list[TelemetryEvent]:
    with Registry.open(result.registry_path) as registry:
        return list(registry.events(result.record.run_id))


def stream(events: list[TelemetryEvent]) -> list[tuple]:
    """What a deterministic run repeats exactly (RUN_FINISHED carries timings)."""
    return [(e.seq, e.event_type, e.batch, e.env_id, e.epoch, e.seed_id, e.slot_id, e.message,
             e.data) for e in events if e.event_type is not T.RUN_FINISHED]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The policy.pt of a tiny trained lstm run."""
    trained = run(lstm_spec(seed=1), registry=tmp_path_factory.mktemp("trained") / "runs.db")
    assert trained.record.status is RunStatus.FINISHED
    with Registry.open(trained.registry_path) as registry:
        return registry.artifacts(trained.record.run_id)["policy"]


@pytest.fixture(scope="module")
def frozen(checkpoint: str, tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    """The checkpoint evaluated frozen on seed 101, recorded to MLflow too."""
    return run(frozen_spec(checkpoint, mlflow=True),
               registry=tmp_path_factory.mktemp("frozen") / "runs.db")


def test_a_frozen_run_changes_no_weight_and_no_statistic(checkpoint, frozen):
    saved = torch.load(checkpoint, weights_only=True)
    policy = frozen.policy
    assert isinstance(policy, PPOPolicy)
    network = policy.network.state_dict()
    assert network.keys() == saved["network"].keys()
    assert all(torch.equal(saved["network"][key], value) for key, value in network.items())
    for name in ("obs_stats", "reward_stats"):
        after = getattr(policy, name).state_dict()
        assert torch.equal(after["mean"], saved[name]["mean"]), name
        assert torch.equal(after["var"], saved[name]["var"]), name
        assert after["count"] == saved[name]["count"], name
    steps = [state["step"] for state in policy.optimizer.state_dict()["state"].values()]
    assert steps == [state["step"] for state in saved["optimizer"]["state"].values()]


def test_a_frozen_run_acts_but_records_no_ppo_update_and_no_checkpoint(frozen):
    kinds = {event.event_type for event in events_of(frozen)}
    assert T.EPOCH_COMPLETED in kinds and T.BATCH_COMPLETED in kinds
    assert T.PPO_UPDATE_COMPLETED not in kinds
    assert frozen.record.status is RunStatus.FINISHED
    with Registry.open(frozen.registry_path) as registry:
        assert "policy" not in registry.artifacts(frozen.record.run_id)


def test_the_update_fields_of_a_frozen_run_are_skip_not_fail(frozen):
    assert not frozen.wiring_failed
    assert not [o.field.label for o in frozen.wiring if o.outcome is Outcome.FAIL]
    by_id = {}
    for outcome in frozen.wiring:
        by_id.setdefault(outcome.field.tele_id, []).append(outcome)
    for tele_id in ("TELE-300", "TELE-340", "TELE-350", "TELE-360", "TELE-361", "TELE-370"):
        assert {o.outcome for o in by_id[tele_id]} == {Outcome.SKIP}, tele_id
    assert {o.reason for o in by_id["TELE-350"]} == {
        "no PPO update ran (producer ppo is off: a fixed policy, or policy.train false)"}
    # lstm_health's rollout part still runs: its warnings are judged as in training
    assert {o.reason for o in by_id["TELE-341"]} == {"not expected"}


def test_a_frozen_run_is_tagged_as_an_evaluation_in_the_registry_and_mlflow(checkpoint, frozen):
    expected = {TAG_EVALUATION: "true", TAG_EVALUATED_CHECKPOINT: os.path.abspath(checkpoint)}
    assert expected.items() <= dict(frozen.record.tags).items()
    shown = CliRunner().invoke(cli, ["show", frozen.record.run_id, "--registry",
                                     str(frozen.registry_path)])
    assert shown.exit_code == 0, shown.output
    assert f"{TAG_EVALUATION}=true" in shown.output
    mlflow_run = MlflowClient().get_run(frozen.record.mlflow_run_id)
    assert expected.items() <= mlflow_run.data.tags.items()


def test_a_training_run_is_not_tagged_as_an_evaluation(tmp_path):
    trained = run(tiny_spec(training={"envs": 1, "batches": 1, "episode_length": 2},
                            tracking={"mlflow": False, "tags": {"team": "x"}}),
                  registry=tmp_path / "runs.db")
    assert dict(trained.record.tags) == {"team": "x"}


def test_a_frozen_run_acts_as_the_policy_does_in_its_first_training_batch(checkpoint, frozen,
                                                                          tmp_path):
    # the same checkpoint and seed, training: its first batch acts before any update
    training = run(lstm_spec(101, init_from=checkpoint), registry=tmp_path / "runs.db")
    first_batch = [(e.env_id, e.epoch, e.data) for e in events_of(training)
                   if e.event_type is T.EPOCH_COMPLETED and e.batch == 0]
    assert first_batch == [(e.env_id, e.epoch, e.data) for e in events_of(frozen)
                           if e.event_type is T.EPOCH_COMPLETED and e.batch == 0]


def test_the_same_frozen_run_twice_gives_the_same_event_stream(checkpoint, frozen, tmp_path):
    again = run(frozen_spec(checkpoint), registry=tmp_path / "runs.db")
    assert stream(events_of(again)) == stream(events_of(frozen))


@pytest.mark.parametrize("policy", ["heuristic", "random"])
def test_train_false_is_refused_for_a_policy_that_never_trains(policy, tmp_path):
    document = tiny_document(policy={"type": policy, "train": False})
    path = tmp_path / "frozen.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    line = path.read_text().splitlines().index("  train: false") + 1
    db = tmp_path / "runs.db"
    result = CliRunner().invoke(cli, ["run", str(path), "--registry", str(db)])
    assert result.exit_code == 2
    assert (f"{path}:{line}:10: policy.train: a {policy} policy never trains, so train: false "
            "changes nothing") in result.stderr
    assert not db.exists()


def test_train_false_set_on_the_command_line_is_refused_for_the_heuristic(tmp_path):
    path = tmp_path / "heuristic.yaml"
    path.write_text(yaml.safe_dump(tiny_document()))
    result = CliRunner().invoke(cli, ["run", str(path), "--set", "policy.train=false",
                                      "--registry", str(tmp_path / "runs.db")])
    assert result.exit_code == 2
    assert "policy.train: a heuristic policy never trains" in result.stderr

