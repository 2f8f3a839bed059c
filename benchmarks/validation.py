"""Cost of measuring committed and host-only accuracy in the fused validation (issue 18).

The fused validation evaluates K alpha configurations in one pass. Besides the current model and
each live blended seed's counterfactual, it now measures the committed model (fossils on, live
seeds off) and the host alone (every seed off), evaluating identical configurations once. This
times `fused_validate` on learning.yaml's host (2 blocks, 4 channels, 8x8 digits, 200 validation
images) in four model states against a bare stacked forward of the configurations measured
before (1 + live blended seeds), and prints K before and now, the CPU ms of one validation, and
the CPU-time ratio now / before, also relative to the no-seed state (whose ratio is only the
bookkeeping of a validation: loss, counts, one transfer):

    python benchmarks/validation.py [--repeats 50]

Expected: the same K, and a relative ratio ~1.0, with no seed, with a TRAINING seed and with one
blended live seed (the committed model and the host alone are then that seed's counterfactual);
one configuration more with a fossil and a live blended seed, ~1/K more validation (validation
is a small part of an epoch: 200 images against 300 trained).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parents[1]))  # the tests' model builders

from esper.kasmina.counterfactual import fused_validate  # noqa: E402
from esper.kasmina.host import MorphogeneticModel  # noqa: E402
from tests.kasmina.models import tiny_batch, tiny_model, to_holding  # noqa: E402
from timing import Timing, median, single_threaded_torch, timed  # noqa: E402

BATCH = 32  # learning.yaml's batch size


def no_seed() -> MorphogeneticModel:
    return tiny_model()


def training_seed() -> MorphogeneticModel:
    model = tiny_model()
    model.germinate("r0c0", "conv_light", accuracy=0.0)
    model.slot("r0c0").advance()
    return model


def holding_seed() -> MorphogeneticModel:
    model = tiny_model()
    model.germinate("r0c0", "conv_light", accuracy=0.0)
    to_holding(model.slot("r0c0"))
    return model


def fossil_and_holding_seed() -> MorphogeneticModel:
    model = holding_seed()
    model.slot("r0c0").record_contribution(3.0)
    assert model.slot("r0c0").fossilize().ok
    model.germinate("r0c1", "conv_light", accuracy=0.0)
    to_holding(model.slot("r0c1"))
    return model


STATES: dict[str, Callable[[], MorphogeneticModel]] = {
    "no seed": no_seed, "TRAINING seed": training_seed, "HOLDING seed": holding_seed,
    "fossil + HOLDING seed": fossil_and_holding_seed,
}


def configurations_before(model: MorphogeneticModel) -> int:
    """K of the fused validation before committed and host-only accuracy were measured."""
    return 1 + sum(slot.counterfactual_eligible for slot in model.seed_slots())


def stacked_forward(model: MorphogeneticModel, images: torch.Tensor, k: int) -> None:
    """The forward work of a fused validation of `k` configurations (the former pass)."""
    model.eval()
    with torch.no_grad():
        for start in range(0, images.shape[0], BATCH):
            x = images[start:start + BATCH]
            model(x.repeat(k, 1, 1, 1)).argmax(dim=-1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50, help="timed passes per measurement")
    args = parser.parse_args()
    single_threaded_torch()
    images, labels = tiny_batch(n=200, seed=1)
    print(f"{'model state':<24}{'K before':>9}{'K now':>7}{'ms now':>8}{'now/before':>12}"
          f"{'relative':>10}")
    baseline = None
    for name, build in STATES.items():
        model = build()
        k_before = configurations_before(model)
        k_now = fused_validate(model, images, labels, BATCH).n_configs

        def repeat(work: Callable[[], object]) -> Timing:
            return median([timed(work) for _ in range(args.repeats)])

        now = repeat(lambda: fused_validate(model, images, labels, BATCH))
        before = repeat(lambda: stacked_forward(model, images, k_before))
        ratio = now.cpu / before.cpu
        baseline = baseline or ratio
        print(f"{name:<24}{k_before:>9}{k_now:>7}{1000 * now.cpu:>8.2f}{ratio:>12.2f}"
              f"{ratio / baseline:>10.2f}")


if __name__ == "__main__":
    main()
