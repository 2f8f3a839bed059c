"""Storage of one batch of episodes, [envs, episode_length], for one PPO update."""

from __future__ import annotations

import torch

from esper.leyline.actions import HEADS, Op
from esper.tamiyo.actor_critic import LSTMState
from esper.tamiyo.factored_distribution import ActionMasks


class RolloutBuffer:
    """Preallocated tensors of shape (T, N, ...): T epochs, N envs, F features, S slots.

    Each row is one whole episode, so sequences are never cut and BPTT starts from the row's
    initial hidden state (`initial_state`, zero at episode start).
    """

    def __init__(self, steps: int, envs: int, obs_dim: int, n_slots: int) -> None:
        T, N, H = steps, envs, len(HEADS)
        self.raw_obs = torch.zeros(T, N, obs_dim)  # before normalisation, for the statistics
        self.obs = torch.zeros(T, N, obs_dim)  # normalised, as the policy saw them
        self.blueprints = torch.zeros(T, N, n_slots, dtype=torch.int64)
        self.op_masks = torch.zeros(T, N, len(Op), dtype=torch.bool)
        self.slot_masks = torch.zeros(T, N, len(Op), n_slots, dtype=torch.bool)
        self.actions = torch.zeros(T, N, H, dtype=torch.int64)
        self.log_probs = torch.zeros(T, N, H)  # per head, causal-masked
        self.values = torch.zeros(T, N)
        self.rewards = torch.zeros(T, N)  # raw
        self.initial_state: LSTMState | None = None
        self.step = 0

    @property
    def full(self) -> bool:
        return self.step == self.rewards.shape[0]

    def add(self, raw_obs: torch.Tensor, obs: torch.Tensor, blueprints: torch.Tensor,
            masks: ActionMasks, actions: torch.Tensor, log_probs: torch.Tensor,
            values: torch.Tensor) -> None:
        """Store what the policy saw and chose at the current step (all (N, ...))."""
        t = self.step
        self.raw_obs[t], self.obs[t], self.blueprints[t] = raw_obs, obs, blueprints
        self.op_masks[t], self.slot_masks[t] = masks.ops, masks.slots
        self.actions[t], self.log_probs[t], self.values[t] = actions, log_probs, values

    def add_rewards(self, rewards: torch.Tensor) -> None:
        """Store the rewards (N,) of the current step and move to the next."""
        self.rewards[self.step] = rewards
        self.step += 1

    def masks(self) -> ActionMasks:
        """All masks, flattened to (T*N, ...)."""
        return ActionMasks(self.op_masks.flatten(0, 1), self.slot_masks.flatten(0, 1))
