"""The PPO update, top to bottom in CleanRL order (https://github.com/vwxyzjn/cleanrl,
ppo_atari_lstm.py), over a factored action space with per-head clipped ratios.

One batch = the whole rollout [T, N]; every update epoch re-runs the policy over each env's
sequence from its stored initial hidden state (BPTT over whole episodes, nothing cut).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from esper.kasmina.optim import Optimizer
from esper.leyline.actions import HEADS
from esper.leyline.config import PPOConfig
from esper.leyline.events import HeadValues, PPOUpdatePayload
from esper.simic.gae import compute_gae
from esper.simic.normalization import RunningMeanStd
from esper.simic.probes.ppo_probes import UpdateProbes
from esper.simic.rollout_buffer import RolloutBuffer
from esper.tamiyo.actor_critic import FactoredActorCritic
from esper.tamiyo.factored_distribution import CAUSAL, evaluate

LOG_RATIO_LIMIT = 20.0  # ratio = exp(clamp(logp - old_logp, +-20))
KL_STOP_FACTOR = 1.5  # stop when approx KL > 1.5 x target_kl


@dataclass(frozen=True)
class UpdateInputs:
    """Everything one update reads besides the network: the rollout and its bootstrap."""

    buffer: RolloutBuffer
    last_values: torch.Tensor  # (N,) V of the state after the last step
    entropy_coef: float


def entropy_coefficient(config: PPOConfig, batch: int, batches: int) -> float:
    """The entropy coefficient of `batch`, annealed linearly to `entropy_coef_final` if set."""
    if config.entropy_coef_final is None or batches <= 1:
        return config.entropy_coef
    progress = min(batch / (batches - 1), 1.0)
    return config.entropy_coef + (config.entropy_coef_final - config.entropy_coef) * progress


def _head_values(values: torch.Tensor, samples: torch.Tensor) -> HeadValues:
    """One value per head; None for a head that no sample needed (``samples`` counts them)."""
    return HeadValues(*(v if n else None for v, n in zip(values.tolist(), samples.tolist())))


def _spread(values: torch.Tensor) -> float | None:
    """Standard deviation; None for a single value (nothing to measure a spread from)."""
    return values.std().item() if values.numel() > 1 else None


def _normalized(advantages: torch.Tensor, std_floor: float) -> torch.Tensor:
    """Advantages scaled to mean 0 and std 1; a batch of one sample is left as it is (its std
    is undefined: NaN would reach the policy's weights), as Stable-Baselines3 does."""
    if advantages.numel() < 2:
        return advantages
    return (advantages - advantages.mean()) / advantages.std().clamp_min(std_floor)


def _finite(loss: torch.Tensor, grad_norm: torch.Tensor) -> bool:
    """Whether the loss and the gradient norm are finite (one device-to-host transfer)."""
    return bool(torch.isfinite(loss).logical_and(torch.isfinite(grad_norm)).item())


def ppo_update(network: FactoredActorCritic, optimizer: Optimizer,
               reward_stats: RunningMeanStd, config: PPOConfig, inputs: UpdateInputs,
               probes: UpdateProbes | None = None) -> PPOUpdatePayload:
    """One PPO update from a full rollout; returns its core metrics. `probes` (the probes that
    are on, if any) observe the evaluation and the gradients; their fields are filled by the
    caller (`PPOProbes.report`).

    A non-finite loss or gradient norm (a NaN or infinite reward, say) is never stepped into
    the weights: the update stops there, the policy acts on with its last finite weights, and the
    metrics report the non-finite losses with the epochs completed before (the `anomalies` probe
    raises NUMERICAL_INSTABILITY_DETECTED from them)."""
    start = time.perf_counter()
    buf = inputs.buffer
    T, N = buf.rewards.shape

    # rewards divided by a running std (clip +-reward_clip); GAE bootstraps at the truncation
    rewards = buf.rewards
    if config.normalize_rewards:
        reward_stats.update(buf.rewards.flatten())
        rewards = reward_stats.scale(buf.rewards, config.reward_clip)
    advantages, returns = compute_gae(rewards, buf.values, inputs.last_values,
                                      config.gamma, config.gae_lambda)  # (T, N) each

    # flatten the batch: b_ = (T*N, ...)
    b_actions = buf.actions.flatten(0, 1)  # (T*N, heads)
    b_old_log_probs = buf.log_probs.flatten(0, 1)  # (T*N, heads), causal-masked
    b_advantages, b_returns = advantages.flatten(), returns.flatten()
    b_values = buf.values.flatten()
    b_masks = buf.masks()
    multipliers = torch.tensor([getattr(config.entropy_head_multipliers, h) for h in HEADS])
    causal = CAUSAL[b_actions[:, 0]]  # (T*N, heads): 1 where the head matters for the op

    mb_advantages = _normalized(b_advantages, config.advantage_std_floor).unsqueeze(1)  # (T*N, 1)
    ratio_mins, ratio_maxs, head_maxs = [], [], []
    epochs_completed, early_stopped = 0, False
    for _epoch in range(config.update_epochs):
        out = network(buf.obs, buf.blueprints, buf.initial_state)
        logits = [head.flatten(0, 1) for head in out.logits]  # (T*N, n_h)
        new_values = out.values.flatten()  # (T*N,)
        log_probs, entropies = evaluate(logits, b_masks, b_actions)  # (T*N, heads)
        if probes is not None:
            probes.after_evaluation(out)  # lstm_health

        log_ratio = (log_probs - b_old_log_probs).clamp(-LOG_RATIO_LIMIT, LOG_RATIO_LIMIT)
        ratio = log_ratio.exp()  # per head; 1 for irrelevant heads
        joint_log_ratio = log_ratio.sum(dim=1)
        joint_ratio = joint_log_ratio.exp()
        with torch.no_grad():
            # http://joschu.net/blog/kl-approx.html: (r - 1) - log r >= 0 for every sample; at
            # r ~ 1 rounding leaves -1e-8 or -0.0, which is 0 (NaN goes through)
            approx_kl = ((joint_ratio - 1) - joint_log_ratio).mean().clamp_min(0.0).abs()
            ratio_mins.append(joint_ratio.min())  # tensors: reduced by torch, NaN propagates
            ratio_maxs.append(joint_ratio.max())
            head_maxs.append((ratio * causal).max(dim=0).values)
        if config.target_kl is not None and approx_kl.item() > KL_STOP_FACTOR * config.target_kl:
            early_stopped = True
            break

        surrogate = torch.max(-mb_advantages * ratio,
                              -mb_advantages * ratio.clamp(1 - config.clip, 1 + config.clip))
        # summed over the heads that matter, as log pi(a) sums them: the op head gets the same
        # weight whichever op was taken (a mean over them gave GERMINATE's op 1/6 of WAIT's)
        policy_loss = (surrogate * causal).sum(dim=1).mean()
        value_loss = 0.5 * (new_values - b_returns).pow(2).mean()
        entropy = entropies.sum(dim=1).mean()  # reported: the policy's, whatever the weights
        stepped_entropies = entropies.detach()  # per head, of the same epoch as `entropy`
        entropy_bonus = (entropies * multipliers).sum(dim=1).mean()  # per-head multipliers
        loss = policy_loss + config.value_coef * value_loss - inputs.entropy_coef * entropy_bonus

        optimizer.zero_grad()
        loss.backward()
        if probes is not None:
            probes.after_backward(causal)  # head_grad_norms, gradient_drift: before clipping
        grad_norm = torch.nn.utils.clip_grad_norm_(network.parameters(), config.max_grad_norm)
        if not _finite(loss, grad_norm):
            break  # the same rollout would fail again: the policy keeps its finite weights
        optimizer.step()
        epochs_completed += 1

    # undefined for returns without variance, or a batch of one sample (var() is NaN there)
    variance = b_returns.var() if b_returns.numel() > 1 else b_returns.new_zeros(())
    explained = None if variance.item() == 0 else (1 - (b_returns - b_values).var() / variance).item()
    head_samples = causal.sum(0)
    per_head_entropy = stepped_entropies.sum(0) / head_samples.clamp_min(1)
    clipped = ((ratio.detach() - 1.0).abs() > config.clip).float() * causal  # last epoch seen
    # the first epoch's ratio is exactly 1 (KL 0), so it always runs and the losses exist
    return PPOUpdatePayload(
        policy_loss=policy_loss.item(), value_loss=value_loss.item(), entropy=entropy.item(),
        entropy_per_head=_head_values(per_head_entropy, head_samples), approx_kl=approx_kl.item(),
        clip_fraction=(clipped.sum() / causal.sum()).item(), explained_variance=explained,
        ratio_mean=joint_ratio.mean().item(), ratio_min=torch.stack(ratio_mins).min().item(),
        ratio_max=torch.stack(ratio_maxs).max().item(),
        ratio_std=_spread(joint_ratio),
        ratio_max_per_head=_head_values(torch.stack(head_maxs).max(dim=0).values, head_samples),
        pre_clip_grad_norm=float(grad_norm), advantage_mean=b_advantages.mean().item(),
        advantage_std=_spread(b_advantages), return_mean=b_returns.mean().item(),
        return_std=_spread(b_returns), entropy_coef=inputs.entropy_coef,
        epochs_completed=epochs_completed, early_stopped=early_stopped,
        update_time_ms=1000 * (time.perf_counter() - start),
    )
