"""The CI that runs the suite: the scheduled workflow and the fast subset in .ci/run."""

from __future__ import annotations

import shlex
from pathlib import Path

import yaml

from esper.regress.suite import load_suite

REPO = Path(__file__).resolve().parents[2]


def test_workflow_runs_the_suite_nightly_and_on_pull_requests() -> None:
    workflow = yaml.safe_load((REPO / ".github/workflows/regression.yml").read_text())
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as True
    assert "pull_request" in triggers and triggers["schedule"][0]["cron"]
    steps = workflow["jobs"]["regress"]["steps"]
    commands = "\n".join(step.get("run", "") for step in steps)
    assert "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in commands
    regress = next(step["run"].split() for step in steps
                   if step.get("run", "").startswith("esper regress"))
    assert regress[:3] == ["esper", "regress", "experiments/regression"]
    assert {"--report", "--junit", "--registry"} <= set(regress)
    upload = next(step for step in steps if step.get("uses", "").startswith(
        "actions/upload-artifact"))
    assert upload["if"] == "always()"
    uploaded = upload["with"]["path"].split()
    assert uploaded == [regress[regress.index(flag) + 1]
                        for flag in ("--report", "--junit", "--registry")]


def test_ci_runs_the_fast_subset_after_the_tests() -> None:
    script = (REPO / ".ci/run").read_text()
    assert script.index("python -m pytest") < script.index("esper regress")
    (command,) = [shlex.split(line) for line in script.splitlines()
                  if line.startswith("esper regress")]
    subset = command[command.index("--subset") + 1]
    suite = load_suite(REPO / command[2], subset)
    assert suite.subset == "fast" and suite.experiments


def test_ci_runs_the_readmes_test_command() -> None:
    """README's second set-up command (install the CPU torch, the dev extras, run the tests) is
    what .ci/run runs, step by step, and both install the CPU build from PyTorch's index."""
    readme = (REPO / "README.md").read_text()
    blocks = [b.split("```", 1)[0] for b in readme.split("```bash\n")[1:3]]
    test_command = blocks[1].replace("\\\n", " ")
    steps = [" ".join(step.split()) for step in test_command.split("&&")]
    script = (REPO / ".ci/run").read_text().splitlines()
    assert [line for line in script if line in steps] == steps
    assert steps[0].startswith("pip install torch==2.13.0 --index-url "
                               "https://download.pytorch.org/whl/cpu")
    assert blocks[0].replace("\\\n", " ").split("&&")[0].split() == steps[0].split()
