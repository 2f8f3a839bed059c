"""Small experiments for tests, built through the real loader so the schema defaults apply."""

from __future__ import annotations

from typing import Any

from esper.experiment import spec_from_dict
from esper.leyline.config import ExperimentSpec


def tiny_document(**sections: Any) -> dict[str, Any]:
    """A fast experiment on a digits subset, as the YAML document; keyword arguments replace
    whole sections."""
    document: dict[str, Any] = {
        "name": "tiny",
        "seed": 1,
        "task": {"dataset": "digits", "max_train": 256, "max_val": 128, "batch_size": 64},
        "host": {"n_blocks": 2, "base_channels": 4},
        "slots": {"enabled": ["r0c0", "r0c1"], "max_seeds": 2},
        "training": {"envs": 2, "batches": 1, "episode_length": 4},
    }
    document.update(sections)
    return document


def tiny_spec(**sections: Any) -> ExperimentSpec:
    """`tiny_document` loaded through the real loader (schema defaults applied)."""
    return spec_from_dict(tiny_document(**sections))
