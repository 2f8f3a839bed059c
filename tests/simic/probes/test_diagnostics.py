"""`diagnostics` probe: ANALYTICS_SNAPSHOT every `every` epochs, with the red flags it finds."""

import pytest
import torch
from torch.nn import functional as F

from esper.experiment.compile import compile_spec
from esper.leyline.events import TelemetryEventType as T
from esper.simic.env_state import EnvState
from esper.simic.probes.diagnostics import OVERFITTING_GAP, PLATEAU_EPOCHS, LayerGradientRecorder
from tests.growing_spec import growing_spec
from tests.simic.probes.env_runs import record_run

HOST = {"n_blocks": 2, "base_channels": 4}
LAYERS = ["blocks.0.conv", "blocks.0.norm", "blocks.1.conv", "blocks.1.norm", "head"]
EVERY_2 = {"diagnostics": {"every": 2}}


@pytest.fixture(scope="module")
def overfitting(tmp_path_factory):
    """20 training images, 150 for validation: the host soon fits its few images."""
    return record_run(tmp_path_factory.mktemp("run"), ["diagnostics"], EVERY_2,
                      task={"dataset": "digits", "max_train": 20, "max_val": 150,
                            "batch_size": 10},
                      training={"envs": 2, "batches": 1, "episode_length": 8})


def _epochs(recorded):
    return {(e.env_id, e.epoch): e.data for e in recorded.of(T.EPOCH_COMPLETED)}


def _trained_at_alpha_1_in_blending(epoch) -> bool:
    """The epoch's seed in r0c1 (its slots are the state the epoch trained with) was blended at
    alpha 1 while still isolated: blocks 0 and 1 get no gradient."""
    [slot] = epoch.slots
    return (slot.stage, slot.alpha) == ("BLENDING", 1.0)


def test_a_snapshot_every_other_epoch_per_env_with_the_epochs_measures(overfitting):
    snapshots = overfitting.of(T.ANALYTICS_SNAPSHOT)
    assert sorted((e.env_id, e.epoch) for e in snapshots) == [
        (env, epoch) for env in range(2) for epoch in (1, 3, 5, 7)]
    epochs = _epochs(overfitting)
    for event in snapshots:
        data, step = event.data, epochs[(event.env_id, event.epoch)]
        assert data.kind == "diagnostic_snapshot"
        # every layer, but a host block upstream of a seed blended in at alpha 1 while still
        # isolated (BLENDING) gets no gradient: the seed replaced its output
        cut_off = _trained_at_alpha_1_in_blending(step)
        assert [layer.layer for layer in data.layers] == (["head"] if cut_off else LAYERS)
        # every measured layer learns: an exact 0 outside the cut-off is what the flag is for
        assert all(layer.gradient_norm > 0 and 0 <= layer.gradient_health <= 1
                   for layer in data.layers)
        # train accuracy in eval mode on the 20 training images, as the validation measures
        assert data.val_accuracy == step.val_accuracy and (20 * data.train_accuracy / 100) % 1 == 0
        assert data.train_val_gap == pytest.approx(data.train_accuracy - step.val_accuracy)
        # per class, on the same model as the validation: the classes add up to its accuracy
        assert [c.label for c in data.classes] == list(range(10))
        assert sum(c.samples for c in data.classes) == 150
        hits = sum(c.accuracy * c.samples for c in data.classes if c.accuracy is not None)
        assert hits / 150 == pytest.approx(step.val_accuracy)


def test_overfitting_and_plateau_are_flagged_exactly_when_the_epochs_show_them(overfitting):
    epochs = _epochs(overfitting)
    flagged = set()
    for event in overfitting.of(T.ANALYTICS_SNAPSHOT):
        data = event.data
        accuracies = [epochs[(event.env_id, e)].val_accuracy for e in range(event.epoch + 1)]
        gains = [b - a for a, b in zip(accuracies, accuracies[1:])]
        plateau = len(gains) >= PLATEAU_EPOCHS and all(g < 0.5 for g in gains[-PLATEAU_EPOCHS:])
        assert ("plateau" in data.red_flags) == plateau
        assert ("overfitting" in data.red_flags) == (data.train_val_gap > OVERFITTING_GAP)
        flagged.update(data.red_flags)
    assert {"overfitting", "plateau"} <= flagged


def test_gradients_that_decay_to_nothing_are_flagged_vanishing(tmp_path):
    """SGD with lr 1 and weight decay 1 (no momentum) zeroes the conv and norm weights."""
    recorded = record_run(tmp_path, ["diagnostics"], EVERY_2,
                          host={**HOST, "lr": 1.0, "weight_decay": 1.0, "momentum": 0.0},
                          training={"envs": 1, "batches": 1, "episode_length": 4})
    snapshots = [e.data for e in recorded.of(T.ANALYTICS_SNAPSHOT)]
    assert len(snapshots) == 2
    for data in snapshots:
        assert "vanishing_gradients" in data.red_flags
        vanished = {layer.layer for layer in data.layers if layer.has_vanishing}
        assert "blocks.0.conv" in vanished
        assert all(layer.gradient_health < 1.0 for layer in data.layers if layer.has_vanishing)


def test_the_recorder_reads_gradients_before_clipping_and_flags_exploding_ones():
    spec = growing_spec(host=HOST)
    pipeline = compile_spec(spec)
    env = EnvState.fresh(0, spec, pipeline.data, pipeline.device)
    recorder = LayerGradientRecorder(env.model.host, cut_off=[])
    x, y = pipeline.data.train_images[:32], pipeline.data.train_labels[:32]
    (F.cross_entropy(env.model(x), y) * 1e6).backward()
    unclipped = torch.linalg.vector_norm(env.model.host.head.weight.grad).item()
    torch.nn.utils.clip_grad_norm_(env.model.host_parameters(), 1.0)
    layers = {layer.layer: layer for layer in recorder.finish()}
    assert list(layers) == LAYERS
    assert layers["head"].has_exploding and layers["head"].gradient_health < 1.0
    assert layers["head"].gradient_norm >= unclipped > 100
    recorded = list(recorder.norms)
    F.cross_entropy(env.model(x), y).backward()  # the hooks are gone: nothing is recorded
    assert all(a is b for a, b in zip(recorded, recorder.norms))


def test_the_classes_measure_the_validated_model_on_an_epoch_the_governor_rolls_back(
        tmp_path, monkeypatch):
    """A NaN val loss at the diagnostic epoch 3 makes the governor restore the episode-start
    snapshot; the snapshot's per-class accuracy is still that of the model the epoch validated
    (the classes add up to its val accuracy), not of the restored untrained host."""
    from esper.tolaria.host_step import run_epoch

    def nan_loss_at_epoch_3(model, optimizer, data, schedule, epoch, env_id, grad_clip, **kw):
        result = run_epoch(model, optimizer, data, schedule, epoch, env_id, grad_clip, **kw)
        if epoch == 3:
            return type(result)(**{**result.__dict__, "val_loss": float("nan")})
        return result

    monkeypatch.setattr("esper.simic.env_loop.run_epoch", nan_loss_at_epoch_3)
    recorded = record_run(tmp_path, ["diagnostics"], {"diagnostics": {"every": 4}},
                          training={"envs": 1, "batches": 1, "episode_length": 4})
    (rollback,) = recorded.of(T.GOVERNOR_ROLLBACK)
    (snapshot,) = recorded.of(T.ANALYTICS_SNAPSHOT)
    assert rollback.epoch == snapshot.epoch == 3
    data = snapshot.data
    n = sum(c.samples for c in data.classes)
    hits = sum(c.accuracy * c.samples for c in data.classes if c.accuracy is not None)
    assert hits / n == pytest.approx(data.val_accuracy)


def test_an_underfit_host_is_not_flagged_overfitting(tmp_path):
    """1000 training images, 300 for validation, four epochs: train and val accuracy are measured
    alike (eval mode) and stay within the gap on every snapshot."""
    recorded = record_run(tmp_path, ["diagnostics"], {"diagnostics": {"every": 1}},
                          task={"dataset": "digits", "max_train": 1000, "max_val": 300,
                                "batch_size": 50},
                          training={"envs": 1, "batches": 1, "episode_length": 4})
    snapshots = recorded.of(T.ANALYTICS_SNAPSHOT)
    assert len(snapshots) == 4
    assert all("overfitting" not in e.data.red_flags for e in snapshots)


def test_host_blocks_cut_off_by_a_seed_blended_at_alpha_1_are_not_called_vanishing(tmp_path):
    """On the epoch growing_spec's seed trains at alpha 1 while still isolated in BLENDING, the
    host path before its slot r0c1 is multiplied by exactly 0: blocks 0 and 1 get gradients of
    exactly 0 by construction. They are not measured, so no vanishing flag (before, they read
    0.0 and raised vanishing_gradients); every other epoch measures every layer."""
    recorded = record_run(tmp_path, ["diagnostics"], {"diagnostics": {"every": 1}},
                          training={"envs": 2, "batches": 1, "episode_length": 14})
    epochs, cut = _epochs(recorded), 0
    for e in recorded.of(T.ANALYTICS_SNAPSHOT):
        layers = [layer.layer for layer in e.data.layers]
        if _trained_at_alpha_1_in_blending(epochs[(e.env_id, e.epoch)]):
            cut += 1
            assert layers == ["head"] and "vanishing_gradients" not in e.data.red_flags
        else:
            assert layers == LAYERS
    assert cut == 2  # one epoch per env
