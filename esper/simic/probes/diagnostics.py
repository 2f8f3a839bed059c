"""`diagnostics` probe: every `diagnostics.every` epochs, a diagnostic snapshot of each env.

On a diagnostic epoch (the every-th, 2*every-th, ... epoch of the episode) the host's gradients
are recorded per layer as backward accumulates them, before clipping (a post-accumulate hook on
each host parameter, removed after the epoch; the last training batch's values are kept). Right
after validation, before the governor may roll the model back, one extra no-grad pass over the
env's validation data gives the accuracy per class: the model the validation measured, so the
classes add up to its val accuracy even on an epoch the governor rolls back. The same pass over
the env's training images of the epoch gives the train accuracy the gap is measured with: the
same model in the same (eval) mode, not the epoch's running train-mode accuracy, which BatchNorm's
batch statistics and the epoch's early batches make look like overfitting early on.
The ANALYTICS_SNAPSHOT (kind diagnostic_snapshot) carries those, the train/val accuracy gap and
the red flags:
- plateau: the host's accuracy gained less than `signals.plateau_min_gain` on each of
  the last PLATEAU_EPOCHS epochs (the signal tracker's plateau count, docs/pipeline.md §5);
- vanishing_gradients / exploding_gradients: a host layer has a vanishing (norm < 1e-7) or an
  exploding (norm > 100, or not finite) parameter gradient (kasmina.gradients thresholds). The
  host blocks before a slot that blends an isolated seed at alpha 1 (ADD) get exactly 0 by
  construction; their layers are not measured rather than called vanishing;
- overfitting: that train accuracy exceeds val accuracy by more than OVERFITTING_GAP points.
"""

from __future__ import annotations

import torch
from torch import nn

from esper.kasmina.gradients import gradient_health, norm_summary
from esper.kasmina.host import MorphogeneticModel
from esper.leyline.config import DiagnosticsOptions
from esper.leyline.emitter import Emitter
from esper.leyline.events import (ClassAccuracy, DiagnosticSnapshotPayload, LayerGradient,
                                  Severity, TelemetryEventType)
from esper.simic.env_state import EnvState
from esper.simic.lifecycle_events import StepContext
from esper.tolaria.batching import BatchSchedule
from esper.tolaria.datasets import TaskData

KIND = "diagnostic_snapshot"
PLATEAU_EPOCHS = 3  # plateau epochs in a row that raise the plateau flag (the heuristic's count)
OVERFITTING_GAP = 10.0  # train - val accuracy points above which the host overfits


class LayerGradientRecorder:
    """Records the gradient norm of every host parameter when backward accumulates it (before
    clipping); each batch overwrites the previous one's. Hooks are removed by `finish`.

    :param cut_off: host modules no gradient reaches by construction; their layers are not
        measured (an exact 0 there is the blend's arithmetic, not a vanishing gradient).
    """

    def __init__(self, host: nn.Module, cut_off: list[nn.Module]) -> None:
        unreachable = {id(m) for block in cut_off for m in block.modules()}
        self.layers = [(name, list(module.parameters(recurse=False)))
                       for name, module in host.named_modules()
                       if id(module) not in unreachable
                       and next(module.parameters(recurse=False), None) is not None]
        parameters = [p for _, params in self.layers for p in params]
        self.norms: list[torch.Tensor | None] = [None] * len(parameters)  # per parameter, ()
        self.handles = [p.register_post_accumulate_grad_hook(self._recorder(i))
                        for i, p in enumerate(parameters)]

    def _recorder(self, i: int):
        def record(parameter: torch.Tensor) -> None:
            assert parameter.grad is not None
            self.norms[i] = torch.linalg.vector_norm(parameter.grad.detach())
        return record

    def finish(self) -> tuple[LayerGradient, ...]:
        """Remove the hooks; the layers whose gradients were all recorded, in one transfer."""
        for handle in self.handles:
            handle.remove()
        names, summaries, counts = [], [], []
        start = 0
        for name, params in self.layers:
            norms = self.norms[start:start + len(params)]
            start += len(params)
            if any(norm is None for norm in norms):
                continue  # not all of the layer got a gradient: not measured
            summaries.append(norm_summary([n for n in norms if n is not None], norms[0].device))
            names.append(name)
            counts.append(len(params))
        if not summaries:
            return ()
        values = torch.stack(summaries).tolist()  # the one transfer
        return tuple(
            LayerGradient(layer=name, gradient_norm=norm,
                          gradient_health=gradient_health(n, int(vanishing), int(exploding)),
                          has_vanishing=vanishing > 0, has_exploding=exploding > 0)
            for name, n, (norm, vanishing, exploding) in zip(names, counts, values))


def class_accuracy(model: MorphogeneticModel, images: torch.Tensor, labels: torch.Tensor,
                   num_classes: int, batch_size: int) -> tuple[ClassAccuracy, ...]:
    """Accuracy per class of `model` (eval mode, current alphas, no gradient) on images
    (N, C, H, W) and labels (N,); the model's train/eval mode is restored."""
    correct = torch.zeros(num_classes, dtype=torch.int64, device=images.device)  # (classes,)
    total = torch.zeros(num_classes, dtype=torch.int64, device=images.device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, images.shape[0], batch_size):
                x, y = images[start:start + batch_size], labels[start:start + batch_size]
                hits = model(x).argmax(dim=1) == y  # (B,)
                total += torch.bincount(y, minlength=num_classes)
                correct += torch.bincount(y[hits], minlength=num_classes)
    finally:
        model.train(was_training)
    counts, hits = torch.stack([total, correct]).tolist()  # the one transfer
    return tuple(ClassAccuracy(label=c, samples=n, accuracy=100.0 * h / n if n else None)
                 for c, (n, h) in enumerate(zip(counts, hits)))


def overall_accuracy(classes: tuple[ClassAccuracy, ...]) -> float:
    """The accuracy over every sample of `classes`, percent."""
    samples = sum(c.samples for c in classes)
    hits = sum(c.samples * c.accuracy / 100.0 for c in classes if c.accuracy is not None)
    return 100.0 * hits / samples


class DiagnosticsProbe:
    """Snapshots each env every `options.every` epochs."""

    def __init__(self, options: DiagnosticsOptions, hub: Emitter, data: TaskData,
                 schedule: BatchSchedule) -> None:
        self.every, self.hub, self.data, self.schedule = options.every, hub, data, schedule
        self._recorders: dict[int, LayerGradientRecorder] = {}  # env id -> this epoch's
        self._classes: dict[int, tuple[ClassAccuracy, ...]] = {}  # env id -> this epoch's
        self._train_accuracy: dict[int, float] = {}  # env id -> this epoch's, eval mode

    def _due(self, epoch: int) -> bool:
        return (epoch + 1) % self.every == 0

    def step_started(self, env: EnvState, ctx: StepContext) -> None:
        if self._due(ctx.epoch):
            self._recorders[env.env_id] = LayerGradientRecorder(
                env.model.host, env.model.host_blocks_cut_off())

    def step_finished(self, env: EnvState, ctx: StepContext) -> None:
        """After validation, before the governor: the accuracy per class of the validated model,
        and its accuracy on the env's training images of the epoch."""
        if not self._due(ctx.epoch):
            return
        images, labels = self.data.val_images, self.data.val_labels
        indices = self.schedule.val_indices(env.env_id)
        if indices is not None:
            images, labels = images[indices], labels[indices]
        self._classes[env.env_id] = self._classes_of(env, images, labels)
        trained = torch.cat(self.schedule.train_batches(ctx.schedule_epoch, env.env_id))
        self._train_accuracy[env.env_id] = overall_accuracy(self._classes_of(
            env, self.data.train_images[trained], self.data.train_labels[trained]))

    def _classes_of(self, env: EnvState, images: torch.Tensor,
                    labels: torch.Tensor) -> tuple[ClassAccuracy, ...]:
        return class_accuracy(env.model, images, labels, self.data.num_classes,
                              self.schedule.batch_size)

    def epoch_validated(self, env: EnvState, ctx: StepContext, stabilised: bool) -> None:
        if not self._due(ctx.epoch):
            return
        layers = self._recorders.pop(env.env_id).finish()
        classes = self._classes.pop(env.env_id)
        train_accuracy = self._train_accuracy.pop(env.env_id)
        result = env.last_result
        assert result is not None
        gap = train_accuracy - result.val_accuracy
        flags = (("plateau", env.signals.plateau_epochs >= PLATEAU_EPOCHS),
                 ("vanishing_gradients", any(layer.has_vanishing for layer in layers)),
                 ("exploding_gradients", any(layer.has_exploding for layer in layers)),
                 ("overfitting", gap > OVERFITTING_GAP))
        red_flags = tuple(name for name, raised in flags if raised)
        self.hub.emit(TelemetryEventType.ANALYTICS_SNAPSHOT, DiagnosticSnapshotPayload(
            kind=KIND, layers=layers, classes=classes, train_accuracy=train_accuracy,
            val_accuracy=result.val_accuracy, train_val_gap=gap, red_flags=red_flags),
            severity=Severity.WARNING if red_flags else Severity.INFO,
            batch=ctx.batch, env_id=ctx.env_id, epoch=ctx.epoch,
            message=f"red flags: {', '.join(red_flags)}" if red_flags else "no red flag")
