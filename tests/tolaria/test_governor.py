"""Governor: NaN panic, lobotomy, divergence streaks, snapshots and rollback."""

import math

import torch

from esper.kasmina.alpha import AlphaController
from esper.leyline.stages import SeedStage
from esper.tolaria.governor import Governor
from esper.tolaria.host_step import run_epoch

from .setup import tiny_env


def test_nan_val_loss_rolls_back_to_the_snapshot() -> None:
    env = tiny_env()
    governor = Governor(env.data.num_classes)
    governor.snapshot(env.model, env.optimizer, epoch=0)
    for epoch in range(1, 6):
        result = run_epoch(env.model, env.optimizer, env.data, env.schedule, epoch, 0, 1.0)
        assert governor.observe(env.model, env.optimizer, epoch, result.val_loss) is None
    snapshot = governor.last_snapshot
    assert snapshot is not None and snapshot.epoch == 5
    good_loss = result.val_loss
    env.model.germinate("r0c1", "conv_light", accuracy=result.val_accuracy)
    env.model.slot("r0c1").advance()
    env.model.germinate("r0c0", "norm", accuracy=result.val_accuracy)
    run_epoch(env.model, env.optimizer, env.data, env.schedule, 6, 0, 1.0)
    with torch.no_grad():  # inject the failure: a NaN in the first conv
        env.model.host.blocks[0].conv.weight[0, 0, 0, 0] = float("nan")
    broken = run_epoch(env.model, env.optimizer, env.data, env.schedule, 7, 0, 1.0)
    assert math.isnan(broken.val_loss)
    rollback = governor.observe(env.model, env.optimizer, 7, broken.val_loss)
    assert rollback is not None
    assert (rollback.reason, rollback.epoch, rollback.snapshot_epoch) == ("nan_loss", 7, 5)
    pruned = [t for update in rollback.pruned for t in update.transitions]
    assert {(t.slot_id, t.from_stage, t.to_stage, t.initiator) for t in pruned} == {
        ("r0c0", SeedStage.GERMINATED, SeedStage.PRUNED, "governor"),
        ("r0c1", SeedStage.TRAINING, SeedStage.PRUNED, "governor"),
    }
    state = env.model.host.state_dict()
    assert all(torch.equal(state[k], v) for k, v in snapshot.host_state.items())
    restored_momentum = env.optimizer.state_dict()["state"]
    for index, buffers in snapshot.host_optimizer_state["state"].items():
        assert torch.equal(restored_momentum[index]["momentum_buffer"], buffers["momentum_buffer"])
    after = run_epoch(env.model, env.optimizer, env.data, env.schedule, 8, 0, 1.0)
    assert math.isfinite(after.val_loss) and after.val_loss < 2 * good_loss + 1.0


def test_injected_nan_and_inf_panic_immediately() -> None:
    governor = Governor(10)
    for value in (float("nan"), float("inf")):
        verdict = governor.check(value)
        assert verdict.rollback and verdict.reason == "nan_loss"
    assert len(governor.history) == 0


def test_lobotomy_after_ten_samples() -> None:
    governor = Governor(10)
    uniform = math.log(10)
    assert not governor.check(uniform).rollback  # fewer than 10 samples: no statistics yet
    governor = Governor(10)
    for _ in range(10):
        assert not governor.check(0.5).rollback
    verdict = governor.check(uniform * 1.05)
    assert verdict.rollback and verdict.reason == "lobotomy"
    assert not Governor(10).check(uniform).rollback
    high_history = Governor(10)
    for _ in range(10):
        high_history.check(2.0)  # mean 2.0 >= 0.6 ln 10 = 1.38: never learned, not a lobotomy
    assert not high_history.check(uniform).rollback


def test_divergence_three_times_in_a_row() -> None:
    governor = Governor(10)
    for i in range(10):
        governor.check(0.5 + 0.01 * i)
    first, second = governor.check(50.0), governor.check(60.0)
    assert not first.rollback and not second.rollback and second.divergence_streak == 2
    assert not governor.check(0.6).rollback and governor.divergence_streak == 0  # streak broken
    assert not governor.check(13.0).rollback
    assert not governor.check(13.0).rollback
    third = governor.check(13.0)
    assert third.rollback and third.reason == "divergence" and third.divergence_streak == 3
    assert 13.0 not in governor.history  # anomalies stay out of the statistics
    assert not Governor(10).check(11.0).rollback


def test_fossilized_seed_is_snapshotted_and_restored() -> None:
    env = tiny_env()
    governor = Governor(10)
    governor.snapshot(env.model, env.optimizer, 0)
    env.model.germinate("r0c0", "conv_light", accuracy=0.0)
    slot = env.model.slot("r0c0")
    slot.advance()
    state = slot.state
    assert state is not None
    state.epochs_in_stage, state.gradient_health, state.has_exploding = 10, 1.0, False
    slot.advance()
    slot.alpha_controller = AlphaController(1.0)
    slot.advance()
    slot.record_contribution(2.0)
    assert slot.fossilize().ok
    result = run_epoch(env.model, env.optimizer, env.data, env.schedule, 1, 0, 1.0)
    assert governor.observe(env.model, env.optimizer, 1, result.val_loss) is None
    snapshot = governor.last_snapshot
    assert snapshot is not None and snapshot.epoch == 1 and set(snapshot.fossilized_seeds) == {"r0c0"}
    saved = {k: v.clone() for k, v in slot.seed.state_dict().items()}  # type: ignore[union-attr]
    run_epoch(env.model, env.optimizer, env.data, env.schedule, 2, 0, 1.0)
    rollback = governor.rollback(env.model, env.optimizer, 2, "nan_loss", float("nan"))
    assert rollback.restored_seeds == ("r0c0",) and rollback.pruned == ()
    assert slot.stage is SeedStage.FOSSILIZED
    assert slot.seed is not None
    assert all(torch.equal(v, saved[k]) for k, v in slot.seed.state_dict().items())
