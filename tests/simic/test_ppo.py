"""The PPO agent on real rollouts of real (tiny) episodes."""

import math
from dataclasses import replace

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from esper.experiment.runner import run
from esper.leyline.actions import HEADS, Op
from esper.leyline.events import TelemetryEventType as T
from esper.registry import Registry
from esper.simic.normalization import RunningMeanStd
from esper.simic.ppo import UpdateInputs, ppo_update
from esper.simic.ppo_policy import CheckpointError, PPOPolicy
from esper.simic.rollout_buffer import RolloutBuffer
from esper.tamiyo.actor_critic import FactoredActorCritic
from esper.tamiyo.factored_distribution import CAUSAL, ActionMasks, evaluate, sample
from tests.growing_spec import growing_spec


def lstm_spec(**changes):
    sections = {"policy": {"type": "lstm", "feature_dim": 16, "hidden_dim": 16},
                "training": {"envs": 2, "batches": 2, "episode_length": 6},
                "tracking": {"mlflow": False}}
    sections.update(changes)
    return growing_spec(**sections)


def updates(result, path):
    with Registry.open(path) as registry:
        return [e.data for e in registry.events(result.record.run_id, types=[T.PPO_UPDATE_COMPLETED])]


@pytest.fixture(scope="module")
def lstm_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("ppo") / "runs.db"
    return run(lstm_spec(ppo={"update_epochs": 1}), registry=path), path


def test_every_batch_ends_with_a_ppo_update_whose_first_epoch_ratio_is_one(lstm_run):
    result, path = lstm_run
    metrics = updates(result, path)
    assert len(metrics) == 2
    for update in metrics:
        # one update epoch, evaluated before its optimiser step: the rollout's own policy
        assert update.ratio_min == pytest.approx(1.0, abs=1e-5)
        assert update.ratio_max == pytest.approx(1.0, abs=1e-5)
        assert update.approx_kl == pytest.approx(0.0, abs=1e-6)
        assert math.copysign(1.0, update.approx_kl) == 1.0  # never -0.0 or -1e-8: k3 >= 0
        assert update.epochs_completed == 1 and not update.early_stopped
        assert update.value_loss >= 0 and update.pre_clip_grad_norm > 0


def test_the_policy_checkpoint_is_saved_with_the_run_and_loads_for_init_from(lstm_run, tmp_path):
    result, path = lstm_run
    with Registry.open(path) as registry:
        checkpoint = registry.artifacts(result.record.run_id)["policy"]
    spec = lstm_spec(policy={"type": "lstm", "feature_dim": 16, "hidden_dim": 16,
                             "init_from": checkpoint})
    loaded = PPOPolicy(spec)
    loaded.load(checkpoint)
    saved = torch.load(checkpoint, weights_only=False)["network"]
    assert all(torch.equal(saved[k], v) for k, v in loaded.network.state_dict().items())
    wider = lstm_spec(policy={"type": "lstm", "feature_dim": 16, "hidden_dim": 32})
    with pytest.raises(CheckpointError, match="was made for"):
        PPOPolicy(wider).load(checkpoint)


def test_several_update_epochs_move_the_ratio_away_from_one(tmp_path):
    result = run(lstm_spec(ppo={"update_epochs": 4, "target_kl": None}), registry=tmp_path / "r.db")
    metrics = updates(result, tmp_path / "r.db")
    assert all(m.epochs_completed == 4 for m in metrics)
    assert any(m.ratio_max > 1.0 + 1e-4 or m.ratio_min < 1.0 - 1e-4 for m in metrics)


def test_an_update_is_deterministic_given_the_seed(tmp_path):
    runs = [run(lstm_spec(policy={"type": "mlp", "feature_dim": 16, "hidden_dim": 16}),
                registry=tmp_path / f"{i}.db") for i in range(2)]
    first, second = (updates(r, tmp_path / f"{i}.db") for i, r in enumerate(runs))
    strip = lambda m: {k: v for k, v in m.__dict__.items() if k != "update_time_ms"}  # noqa: E731
    assert [strip(m) for m in first] == [strip(m) for m in second]


def _network(n_slots=3, n_blueprints=4):
    spec = lstm_spec(slots={"enabled": ["r0c0", "r0c1"][: min(n_slots, 2)], "max_seeds": 2})
    return PPOPolicy(spec).network


def test_heads_irrelevant_to_the_op_get_zero_gradient():
    network = _network()
    n = 5
    obs = torch.randn(1, n, network.config.obs_dim)
    blueprints = torch.zeros(1, n, network.config.n_slots, dtype=torch.int64)
    out = network(obs, blueprints, network.initial_state(n))
    logits = [head[0] for head in out.logits]
    masks = ActionMasks(torch.ones(n, len(Op), dtype=torch.bool),
                        torch.ones(n, len(Op), network.config.n_slots, dtype=torch.bool))
    actions = torch.zeros(n, len(HEADS), dtype=torch.int64)
    actions[:, 0] = Op.FOSSILIZE  # relevant heads: op and slot only
    log_probs, entropies = evaluate(logits, masks, actions)
    (log_probs.sum() + entropies.sum()).backward()
    for name, head in zip(HEADS, network.heads):
        grads = [p.grad for p in head.parameters()]
        has_gradient = any(g is not None and g.abs().sum() > 0 for g in grads)
        assert has_gradient == (name in ("op", "slot")), name


@settings(max_examples=50, deadline=None)
@given(st.data())
def test_sampling_never_picks_a_masked_op_or_slot(data):
    n, n_slots = 4, 3
    slot_masks = torch.tensor(data.draw(st.lists(
        st.lists(st.lists(st.booleans(), min_size=n_slots, max_size=n_slots),
                 min_size=len(Op), max_size=len(Op)), min_size=n, max_size=n)))
    slot_masks[:, Op.WAIT] = True  # WAIT is always possible
    masks = ActionMasks(slot_masks.any(-1), slot_masks)
    logits = [torch.randn(n, size) for size in (len(Op), n_slots, 2, 4, 3, 3, 4, 5)]
    generator = torch.Generator().manual_seed(data.draw(st.integers(0, 2**31)))
    actions = sample(logits, masks, generator)
    for row, mask in zip(actions.tolist(), slot_masks):
        assert mask[row[0], row[1]], f"op {Op(row[0]).name} on slot {row[1]} is impossible"
    log_probs, _ = evaluate(logits, masks, actions)
    assert torch.isfinite(log_probs).all()
    assert (log_probs[CAUSAL[actions[:, 0]] == 0] == 0).all()


def _one_step_rollout(network, ops, rewards):
    """A rollout of one step in len(ops) envs with the same observation, every action
    possible; env i took op ops[i] (every other head: choice 0) and got rewards[i]."""
    n, n_slots = len(ops), network.config.n_slots
    buffer = RolloutBuffer(1, n, network.config.obs_dim, n_slots)
    buffer.initial_state = network.initial_state(n)
    obs = torch.randn(network.config.obs_dim).expand(n, -1)
    blueprints = torch.zeros(n, n_slots, dtype=torch.int64)
    masks = ActionMasks(torch.ones(n, len(Op), dtype=torch.bool),
                        torch.ones(n, len(Op), n_slots, dtype=torch.bool))
    actions = torch.zeros(n, len(HEADS), dtype=torch.int64)
    actions[:, 0] = torch.tensor([int(op) for op in ops])
    with torch.no_grad():
        out = network(obs.unsqueeze(0), blueprints.unsqueeze(0), buffer.initial_state)
        log_probs, _ = evaluate([head[0] for head in out.logits], masks, actions)
    buffer.add(obs, obs, blueprints, masks, actions, log_probs, torch.zeros(n))
    buffer.add_rewards(torch.tensor(rewards))
    return buffer


def _update(network, buffer, lr=0.0, **ppo):
    """One plain update of `network` on `buffer` at learning rate `lr`: gamma 0 (advantage =
    reward, the stored values are 0), no value or entropy term, no gradient clipping, unless
    `ppo` says otherwise."""
    config = replace(lstm_spec().ppo, **{"gamma": 0.0, "value_coef": 0.0, "max_grad_norm": 1e9,
                                         "update_epochs": 1, "normalize_rewards": False, **ppo})
    optimizer = torch.optim.SGD(network.parameters(), lr=lr)
    return ppo_update(network, optimizer, RunningMeanStd(()), config,
                      UpdateInputs(buffer, torch.zeros(buffer.rewards.shape[1]), 0.0))


def test_the_policy_loss_is_the_policy_gradient_of_the_joint_log_probability():
    # WAIT has one relevant head and GERMINATE six: each op's head must still be pushed with
    # its own advantage (a mean over the relevant heads gave GERMINATE's op 1/6 of the push)
    network = _network()
    buffer = _one_step_rollout(network, [Op.WAIT, Op.GERMINATE, Op.ADVANCE, Op.GERMINATE],
                               [1.0, 2.0, -1.0, -0.5])
    advantages = buffer.rewards.flatten()
    advantages = ((advantages - advantages.mean()) / advantages.std()).unsqueeze(1)
    out = network(buffer.obs, buffer.blueprints, buffer.initial_state)
    log_probs, _ = evaluate([head[0] for head in out.logits], buffer.masks(),
                            buffer.actions.flatten(0, 1))
    (-(advantages * log_probs).sum(dim=1).mean()).backward()  # ratio 1: no clipping
    expected = {name: torch.zeros_like(p) if p.grad is None else p.grad.clone()
                for name, p in network.named_parameters()}  # the value head: no gradient
    _update(network, buffer)
    for name, param in network.named_parameters():
        assert torch.allclose(param.grad, expected[name], atol=1e-6), name


def test_scaled_rewards_are_clipped_to_reward_clip():
    network = _network()
    buffer = _one_step_rollout(network, [Op.WAIT, Op.WAIT], [100.0, -100.0])
    metrics = _update(network, buffer, normalize_rewards=True, reward_clip=0.5)
    # the running std is ~100 (and 1e-4 of the prior's 1): the scaled rewards are about +-1
    assert metrics.return_mean == pytest.approx(0.0, abs=1e-6)
    assert metrics.return_std == pytest.approx(0.5 * 2**0.5, abs=1e-4)


def test_the_reported_entropy_is_the_policys_not_weighted_by_the_head_multipliers():
    # GERMINATE's heads blueprint, style, tempo and alpha_target have multipliers 1.2-1.3 by
    # default: they weight the entropy bonus of the loss, not the entropy the update reports
    network = _network()
    buffer = _one_step_rollout(network, [Op.WAIT, Op.GERMINATE, Op.GERMINATE], [1.0, 0.0, -1.0])
    with torch.no_grad():
        out = network(buffer.obs, buffer.blueprints, buffer.initial_state)
        _, entropies = evaluate([head[0] for head in out.logits], buffer.masks(),
                                buffer.actions.flatten(0, 1))
    metrics = _update(network, buffer)  # lr 0: the network it evaluates is this one
    assert metrics.entropy == pytest.approx(entropies.sum(dim=1).mean().item(), rel=1e-6)
    relevant = CAUSAL[buffer.actions.flatten(0, 1)[:, 0]].mean(dim=0)  # share of samples
    # a head no sample needed is None (not measured); its share of the samples is 0
    per_head = torch.tensor([getattr(metrics.entropy_per_head, h) or 0.0 for h in HEADS])
    assert metrics.entropy == pytest.approx((per_head * relevant).sum().item(), rel=1e-5)


@pytest.mark.parametrize("op", [Op.GERMINATE, Op.PRUNE])  # PRUNE needs alpha_speed / _curve
def test_heads_no_sample_needed_are_not_measured_rather_than_zero(op):
    network = _network()
    metrics = _update(network, _one_step_rollout(network, [Op.WAIT, op], [1.0, -1.0]))
    needed = set(HEADS[i] for i in CAUSAL[[int(Op.WAIT), int(op)]].amax(0).nonzero())
    assert "op" in needed and len(needed) < len(HEADS)  # some head neither op needs
    for stats in (metrics.entropy_per_head, metrics.ratio_max_per_head):
        assert {h for h in HEADS if getattr(stats, h) is not None} == needed
    assert metrics.ratio_std is not None  # two samples


def test_a_batch_of_one_sample_updates_without_nan_and_measures_no_spread():
    # envs: 1, episode_length: 1 is a valid experiment: its advantage std is undefined, and
    # normalising by it put NaN into the policy (the next batch's sampling crashed)
    network = _network()
    metrics = _update(network, _one_step_rollout(network, [Op.GERMINATE], [1.0]), lr=0.1,
                      update_epochs=2)
    assert all(torch.isfinite(p).all() for p in network.parameters())
    assert math.isfinite(metrics.policy_loss) and math.isfinite(metrics.value_loss)
    assert (metrics.ratio_std, metrics.advantage_std, metrics.return_std,
            metrics.explained_variance) == (None, None, None, None)  # not measured, not 0


def test_after_a_kl_early_stop_the_entropy_and_its_heads_are_of_the_same_epoch():
    network = _network()
    buffer = _one_step_rollout(network, [Op.WAIT, Op.GERMINATE, Op.GERMINATE], [1.0, 0.0, -1.0])
    metrics = _update(network, buffer, lr=1.0, update_epochs=3, target_kl=1e-9)
    assert metrics.early_stopped and metrics.epochs_completed == 1  # epoch 2 moved the policy
    relevant = CAUSAL[buffer.actions.flatten(0, 1)[:, 0]].mean(dim=0)
    per_head = torch.tensor([getattr(metrics.entropy_per_head, h) or 0.0 for h in HEADS])
    assert metrics.entropy == pytest.approx((per_head * relevant).sum().item(), rel=1e-5)
