"""head_grad_norms: each head's gradient norm after backward; None for a head with no gradient."""

from __future__ import annotations

import math

from esper.leyline.actions import CAUSAL_HEADS, HEADS, Op
from esper.simic.ppo_policy import PPOPolicy
from tests.simic.probes.probe_runs import (HEAD_FIELDS, PROBE_EVENTS, Recorded, T, probe_spec,
                                           rollout)


def _heads_needed(recorded: Recorded, batch: int) -> set[str]:
    """The heads the ops chosen in `batch` need (every op is on its EPOCH_COMPLETED)."""
    ops = {e.data.action for e in recorded.of(T.EPOCH_COMPLETED) if e.batch == batch}
    return set().union(*(CAUSAL_HEADS[Op[op]] for op in ops))


def _check_measured(recorded: Recorded) -> None:
    assert len(recorded.updates) == 2
    for batch, update in enumerate(recorded.updates):
        needed = _heads_needed(recorded, batch)
        for head in HEADS:
            norm = getattr(update, f"head_{head}_grad_norm")
            # measured exactly where some sample's op needs the head, None where none does
            assert (norm is not None) == (head in needed), (batch, head)
            assert norm is None or (math.isfinite(norm) and norm >= 0)
        assert update.head_op_grad_norm > 0  # every op needs the op head
        assert update.head_value_grad_norm > 0  # the critic always learns


def test_an_lstm_run_reports_the_norm_of_every_head_that_had_a_gradient(lstm_all_on):
    _check_measured(lstm_all_on)


def test_an_mlp_run_reports_them_too(mlp_all_on):
    _check_measured(mlp_all_on)


def test_with_the_probe_off_the_fields_are_none(lstm_all_off):
    for update in lstm_all_off.updates:
        assert all(getattr(update, name) is None for name in HEAD_FIELDS)
    assert lstm_all_off.of(*PROBE_EVENTS) == []


def test_a_batch_of_waits_gives_only_the_op_and_value_heads_a_gradient():
    spec = probe_spec("lstm", ("head_grad_norms",), ppo={"update_epochs": 3, "target_kl": None})
    policy = PPOPolicy(spec)
    policy.start_episode(2)
    metrics = rollout(policy, spec, [1.0, -1.0], can_germinate=False).metrics  # WAIT only
    assert metrics.head_value_grad_norm > 0
    # the op head is needed but has one possible choice: a measured 0, not "no gradient"
    assert metrics.head_op_grad_norm == 0.0
    others = [f"head_{head}_grad_norm" for head in HEADS if head != "op"]
    assert all(getattr(metrics, name) is None for name in others)  # None, not 0
