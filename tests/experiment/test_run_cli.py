"""`esper run` through the CLI: output contract, exit codes, nothing written on bad input."""

import json
import os
from pathlib import Path

import torch
from click.testing import CliRunner

from esper.cli import cli
from esper.registry import Registry
from esper.simic.env_loop import EnvLoop, TrainingSummary

QUICKSTART = str(Path(__file__).parents[2] / "experiments" / "quickstart.yaml")
SMALL = ["--set", "training.batches=1", "--set", "training.episode_length=3",
         "--set", "task.max_train=200", "--set", "task.max_val=100",
         "--set", "telemetry.probes=[]"]  # too few epochs for seeds: expect core fields only


def test_run_json_prints_the_summary_and_records_the_run(tmp_path):
    runner = CliRunner()
    db = tmp_path / "runs.db"
    result = runner.invoke(cli, ["run", QUICKSTART, *SMALL, "--registry", str(db), "--json",
                                 "--name", "smoke"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["name"] == "smoke" and summary["status"] == "FINISHED"
    assert len(summary["final_accuracy"]) == 2
    assert set(summary["seeds"]) == {"germinated", "fossilized", "pruned"}
    with Registry.open(db) as registry:
        record = registry.resolve("smoke")
        assert record.event_count == summary["events"] > 0
        assert record.spec_path == QUICKSTART
    shown = json.loads(runner.invoke(cli, ["show", "smoke", "--registry", str(db), "--json"]).stdout)
    final = shown["metrics"]["env1/val_accuracy"]  # the metrics table, derived at the run's end
    assert final["count"] == 3 and (final["first_step"], final["last_step"]) == (0, 2)
    assert final["last"] == summary["final_accuracy"][1]
    assert {"name": "registry", "written": summary["events"], "dropped": 0, "failures": 0,
            "last_error": None} in shown["sinks"]


def test_run_prints_a_human_summary_with_the_run_id(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")  # a new store
    result = CliRunner().invoke(cli, ["run", QUICKSTART, *SMALL, "--registry",
                                      str(tmp_path / "runs.db")])
    assert result.exit_code == 0, result.output
    assert "final val accuracy" in result.stdout and "esper show" in result.stdout
    assert "mlflow" not in result.stderr  # MLflow's INFO lines on creating its tables: silenced


def _assert_refused(tmp_path, args, code, fragment):
    db = tmp_path / "runs.db"
    result = CliRunner().invoke(cli, ["run", *args, "--registry", str(db)])
    assert result.exit_code == code, result.output
    assert fragment in result.stderr
    assert "Traceback" not in result.output
    assert not db.exists()  # nothing written for bad input


def test_invalid_experiment_exits_2_and_writes_nothing(tmp_path):
    _assert_refused(tmp_path, [QUICKSTART, "--set", "training.envz=3"], 2,
                    "training.envz: unknown key 'envz' (did you mean 'envs'?)")


def test_a_missing_policy_checkpoint_is_a_clear_error(tmp_path):
    missing = tmp_path / "policy.pt"
    _assert_refused(tmp_path, [QUICKSTART, "--set", "policy.type=lstm",
                               "--set", f"policy.init_from={missing}"], 2,
                    f"cannot load policy checkpoint {missing}")


class _RunsCode:
    """Unpickling this calls os.system: what a malicious checkpoint file would carry."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_checkpoint_that_carries_code_is_refused_without_running_it(tmp_path):
    evil, marker = tmp_path / "evil.pt", tmp_path / "ran"
    torch.save({"network_config": _RunsCode(marker)}, evil)
    _assert_refused(tmp_path, [QUICKSTART, "--set", "policy.type=lstm",
                               "--set", f"policy.init_from={evil}"], 2,
                    f"cannot load policy checkpoint {evil}: UnpicklingError")
    assert not marker.exists()


def test_a_file_that_is_not_an_esper_checkpoint_is_a_clear_error(tmp_path):
    junk, other = tmp_path / "junk.pt", tmp_path / "other.pt"
    junk.write_text("junk\n")
    torch.save({"weights": torch.zeros(2)}, other)
    _assert_refused(tmp_path, [QUICKSTART, "--set", "policy.type=lstm",
                               "--set", f"policy.init_from={junk}"], 2,
                    f"cannot load policy checkpoint {junk}: ")
    _assert_refused(tmp_path, [QUICKSTART, "--set", "policy.type=lstm",
                               "--set", f"policy.init_from={other}"], 2,
                    f"{other} is not an esper policy checkpoint (missing network_config, network,")


def test_missing_cifar10_directory_is_a_clear_error(tmp_path):
    missing = tmp_path / "nowhere"
    _assert_refused(tmp_path, [QUICKSTART, "--set", "task.dataset=cifar10",
                               "--set", f"task.data_dir={missing}"], 1, str(missing))


def test_split_data_with_fewer_images_than_envs_is_refused_before_the_run(tmp_path):
    # valid in the schema, but the envs cannot each get an image: was an AssertionError
    # traceback from the env loop, with a FAILED run left in the registry
    split = [QUICKSTART, "--no-mlflow", "--set", "task.env_data=split", "--set", "training.envs=8"]
    _assert_refused(tmp_path, [*split, "--set", "task.max_train=3"], 2,
                    "task.env_data is 'split' but the training set has 3 images for 8 envs")
    _assert_refused(tmp_path, [*split, "--set", "task.max_val=1"], 2,
                    "task.env_data is 'split' but the validation set has 1 image for 8 envs")


def test_a_val_fraction_that_leaves_a_digits_set_empty_is_refused_before_the_run(tmp_path):
    # 1797 * 0.0001 rounds to no validation image (was an AssertionError traceback mid-run),
    # 1797 * 0.9999 to no training image
    _assert_refused(tmp_path, [QUICKSTART, "--no-mlflow", "--set", "task.val_fraction=0.0001"],
                    2, "the validation set of task digits has no image (task.val_fraction 0.0001")
    _assert_refused(tmp_path, [QUICKSTART, "--no-mlflow", "--set", "task.val_fraction=0.9999"],
                    2, "the training set of task digits has no image (task.val_fraction 0.9999")


def test_a_batch_of_one_image_at_a_1x1_host_block_is_refused_before_the_run(tmp_path):
    # digits are 8x8: block 3 of 4 works at 1x1, where BatchNorm cannot normalise a batch of
    # one image (was a ValueError traceback mid-run, a FAILED run)
    base = [QUICKSTART, "--no-mlflow", "--set", "host.n_blocks=4"]
    _assert_refused(tmp_path, [*base, "--set", "task.batch_size=1"], 2,
                    "a training batch would hold one image (task.batch_size 1, ")
    _assert_refused(tmp_path, [*base, "--set", "task.max_train=3", "--set", "task.env_data=split",
                               "--set", "training.envs=2"], 2,
                    "(task.batch_size 64, 1 training image per env), and host block 3 of 4 "
                    "works at 1x1 on these 8x8 images")


def test_a_last_batch_of_one_image_at_a_1x1_host_block_trains(tmp_path):
    # 65 images in batches of 64: the 65th joins the first batch instead of training alone
    result = CliRunner().invoke(cli, ["run", QUICKSTART, *SMALL, "--set", "host.n_blocks=4",
                                      "--set", "task.max_train=65", "--no-mlflow",
                                      "--registry", str(tmp_path / "runs.db"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["status"] == "FINISHED"


def test_a_data_set_that_does_not_fit_in_memory_is_refused_before_the_run(tmp_path):
    # 1,000,000 synthetic images of 16x256x256 are 3.8 TiB: was the allocator's RuntimeError,
    # a traceback
    _assert_refused(tmp_path, [QUICKSTART, "--no-mlflow", "--set", "task.dataset=synthetic",
                               "--set", "task.synthetic.n_train=1000000",
                               "--set", "task.synthetic.size=256",
                               "--set", "task.synthetic.channels=16"], 2,
                    "the synthetic data set does not fit in memory (one tensor of 3,906.2 GiB)")


def test_ctrl_c_names_the_run_it_recorded_as_killed(tmp_path, monkeypatch):
    def interrupted(loop: EnvLoop) -> TrainingSummary:  # Ctrl-C during training, provoked
        raise KeyboardInterrupt

    monkeypatch.setattr(EnvLoop, "run", interrupted)
    db = tmp_path / "runs.db"
    result = CliRunner().invoke(cli, ["run", QUICKSTART, "--no-mlflow", "--registry", str(db)])
    assert result.exit_code == 130
    with Registry.open(db) as registry:
        (run,) = registry.runs()
    assert run.status.value == "KILLED"
    assert ("\n" + result.stderr).endswith(  # on a line of its own, after any progress line
        f"\nInterrupted: run {run.run_id} ({run.name}) recorded as KILLED.\n")


def test_ctrl_c_before_a_run_exists_does_not_claim_one(tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):  # Ctrl-C while the experiment is compiled
        raise KeyboardInterrupt

    monkeypatch.setattr("esper.experiment.runner.compile_spec", interrupted)
    db = tmp_path / "runs.db"
    result = CliRunner().invoke(cli, ["run", QUICKSTART, "--no-mlflow", "--registry", str(db)])
    assert result.exit_code == 130 and result.stderr == "Interrupted.\n"
    assert not db.exists()


def test_validate_prints_non_ascii_text_as_written(tmp_path):
    # not as "na\xEFve \U0001F600" (YAML) and "na\u00efve \ud83d\ude00" (JSON escapes)
    spec_file = tmp_path / "unicode.yaml"
    spec_file.write_text('name: hello\ndescription: "naïve 😀"\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["validate", str(spec_file)])
    assert result.exit_code == 0, result.output
    assert "\ndescription: naïve 😀\n" in result.stdout
    assert '#   description: "naïve 😀" (default "")' in result.stdout
