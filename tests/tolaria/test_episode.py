"""A short episode through the real step: measured gradients and counterfactuals carry a seed
through every gate (G1, G2, G3 auto-forward, then G5) to FOSSILIZED."""

from esper.kasmina.alpha import AlphaSchedule
from esper.leyline.stages import AlphaCurve, BlendTempo, SeedStage
from esper.tolaria.governor import Governor
from esper.tolaria.host_step import run_epoch

from .setup import tiny_env


def test_seed_reaches_fossilized_on_measured_signals() -> None:
    env = tiny_env(gates={"auto_forward": ["G1", "G2", "G3"], "G2": {"min_training_epochs": 2}})
    governor = Governor(env.data.num_classes)
    governor.snapshot(env.model, env.optimizer, 0)
    slot = env.model.slot("r0c1")
    stages, gates_seen = [], set()
    for epoch in range(1, 13):
        result = run_epoch(env.model, env.optimizer, env.data, env.schedule, epoch, 0, 1.0)
        for s in env.model.seed_slots():
            s.record_accuracy(result.val_accuracy)
            s.record_contribution(result.contributions.get(s.slot_id))
        for update in env.model.step_epoch():
            gates_seen |= {e.result.gate.name for e in update.gate_evaluations if e.result.passed}
        assert governor.observe(env.model, env.optimizer, epoch, result.val_loss) is None
        if epoch == 2:
            env.model.germinate("r0c1", "conv_light", accuracy=result.val_accuracy,
                                schedule=AlphaSchedule(1.0, BlendTempo.FAST, AlphaCurve.SIGMOID))
        stages.append(slot.stage)
        if slot.stage is SeedStage.HOLDING:
            assert slot.fossilize().ok  # the contribution was measured while BLENDING
    assert gates_seen == {"G1", "G2", "G3"}
    assert slot.stage is SeedStage.FOSSILIZED
    assert {SeedStage.TRAINING, SeedStage.BLENDING, SeedStage.HOLDING} <= set(stages)
    state = slot.state
    assert state is not None and state.gradient_health is not None and state.isolation_violations == 0
    assert governor.last_snapshot is not None and "r0c1" in governor.last_snapshot.fossilized_seeds
