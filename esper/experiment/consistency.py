"""Checks across keys that a JSON Schema cannot express."""

from __future__ import annotations

from typing import Any

from esper.experiment.problems import problem_at, suggestion
from esper.experiment.schema import experiment_schema
from esper.experiment.yaml_source import ParsedDocument
from esper.leyline.catalogue import BY_ID
from esper.leyline.errors import SpecProblem

# TELE ids share "TELE-", so any two are 5/8 alike; a close one keeps 7 of the 8 characters
# in order (one digit off, or two swapped): TELE-421 -> TELE-420, TELE-999 -> nothing.
_TELE_ID_CUTOFF = 0.8


def consistency_problems(document: ParsedDocument, resolved: dict[str, Any]) -> list[SpecProblem]:
    """Problems between keys of a schema-valid document with its defaults filled in."""
    problems = []
    n_blocks = resolved["host"]["n_blocks"]
    beyond = [(index, slot) for index, slot in enumerate(resolved["slots"]["enabled"])
              if int(slot[3:]) >= n_blocks]
    if ("slots", "enabled") in document.value_locations:
        for index, slot in beyond:
            problems.append(problem_at(
                document, ("slots", "enabled", index),
                f"slot {slot!r} sits after host block {slot[3:]}, but host.n_blocks is "
                f"{n_blocks} (expected r0c0..r0c{n_blocks - 1})"))
    elif beyond:  # the default slots: the key written is host.n_blocks (was located at 1:1)
        slots = ", ".join(repr(slot) for _, slot in beyond)
        last = max(int(slot[3:]) for _, slot in beyond)
        problems.append(problem_at(
            document, ("host", "n_blocks"),
            f"host.n_blocks is {n_blocks}, so the slots are r0c0..r0c{n_blocks - 1}, but the "
            f"default slots.enabled includes {slots} (expected host.n_blocks >= {last + 1}, or "
            f"slots.enabled set within r0c0..r0c{n_blocks - 1})"))
    seed, replicates = resolved["seed"], resolved["training"]["replicates"]
    highest = experiment_schema()["properties"]["seed"]["maximum"]
    if seed + replicates - 1 > highest:  # replicate i runs seed + i, recorded as its seed
        problems.append(problem_at(
            document, ("training", "replicates"),
            f"{replicates} replicates from seed {seed} would run seeds up to "
            f"{seed + replicates - 1} (expected seed + replicates - 1 <= {highest})"))
    task = resolved["task"]
    if task["dataset"] == "cifar10" and task["data_dir"] is None:
        problems.append(problem_at(
            document, ("task", "dataset"),
            "dataset 'cifar10' needs task.data_dir (expected the directory holding "
            "data_batch_1..5 and test_batch)"))
    policy = resolved["policy"]
    if policy["init_from"] is not None and policy["type"] not in ("mlp", "lstm"):
        problems.append(problem_at(
            document, ("policy", "init_from"),
            f"a {policy['type']} policy has no network to load a checkpoint into (expected "
            "policy.type mlp or lstm, or no init_from)"))
    if not policy["train"] and policy["type"] not in ("mlp", "lstm"):
        problems.append(problem_at(
            document, ("policy", "train"),
            f"a {policy['type']} policy never trains, so train: false changes nothing (expected "
            "policy.type mlp or lstm for a frozen evaluation, or no policy.train)"))
    wiring = resolved["wiring"]
    if wiring is not None:
        problems += [problem_at(document, ("wiring", "expect", index), _unknown_tele_id(tele_id))
                     for index, tele_id in enumerate(wiring["expect"]) if tele_id not in BY_ID]
        problems += [problem_at(document, ("wiring", "xfail", tele_id), _unknown_tele_id(tele_id),
                                key=True)
                     for tele_id in wiring["xfail"] if tele_id not in BY_ID]
        for tele_id in sorted(set(wiring["expect"]) & set(wiring["xfail"])):
            problems.append(problem_at(
                document, ("wiring", "xfail", tele_id),
                f"{tele_id} is both expected and declared xfail (expected one or the other)",
                key=True))
    return problems


def _unknown_tele_id(tele_id: str) -> str:
    # an unknown id would only ever be SKIP: a typo would switch its check off silently
    return (f"unknown TELE id {tele_id!r}{suggestion(tele_id, BY_ID, cutoff=_TELE_ID_CUTOFF)}; "
            "expected an id of the TELE catalogue (esper/leyline/catalogue.py)")
