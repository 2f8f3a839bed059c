"""A small real experiment in which the heuristic policy germinates, blends and fossilises
seeds within a dozen epochs (short gate minimums, a loose stability test)."""

from __future__ import annotations

from typing import Any

from tests.spec_factory import tiny_spec


def growing_spec(**sections: Any):
    """Digits subset, 2 envs x 14 epochs, gates shortened so seeds reach FOSSILIZED."""
    document: dict[str, Any] = {
        "training": {"envs": 2, "batches": 1, "episode_length": 14},
        "task": {"dataset": "digits", "max_train": 300, "max_val": 150, "batch_size": 50},
        "slots": {"enabled": ["r0c1"], "max_seeds": 2},
        "blueprints": ["conv_light", "norm"],
        "gates": {"G2": {"min_training_epochs": 2, "min_gradient_health": 0.3}},
        "policy": {"heuristic": {"min_epoch": 1, "plateau_epochs": 0,
                                 "fossilize_min_contribution": -100.0}},
        "signals": {"stabilisation_epochs": 1, "stabilisation_min_change": -1.0,
                    "stabilisation_max_change": 1.0},
        "telemetry": {"probes": ["gate_events", "slot_health"]},
    }
    document.update(sections)
    return tiny_spec(**document)
