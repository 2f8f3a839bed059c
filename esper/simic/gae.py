"""Generalised advantage estimation over truncated episodes (Schulman et al. 2015,
https://arxiv.org/abs/1506.02438), bootstrapping from V at the truncation."""

from __future__ import annotations

import torch


def compute_gae(rewards: torch.Tensor, values: torch.Tensor, last_values: torch.Tensor,
                gamma: float, gae_lambda: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantages and returns (T, N) of rewards and values (T, N); `last_values` (N,) is V of
    the state after the last step. Episodes are truncated, never terminated, inside a rollout."""
    T = rewards.shape[0]
    advantages = torch.zeros_like(rewards)
    next_advantage = torch.zeros_like(last_values)
    next_values = last_values
    for t in reversed(range(T)):
        delta = rewards[t] + gamma * next_values - values[t]
        next_advantage = delta + gamma * gae_lambda * next_advantage
        advantages[t] = next_advantage
        next_values = values[t]
    return advantages, advantages + values
