"""The learned policies' network: factored actor heads and a value head, with or without an LSTM.

lstm: features -> Linear -> LayerNorm -> ReLU -> LSTM cell -> LayerNorm, plus a residual from
the features; one small MLP head per action head (the blueprint head one layer deeper) and a
value head V(s). mlp: the same without memory (a hidden Linear -> ReLU instead of the LSTM).
Shapes: T steps, N envs, F features, S slots, H hidden.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from esper.leyline.actions import HEADS, head_sizes


class LSTMState(NamedTuple):
    """Recurrent state of every env: h and c, (N, H) each."""

    h: torch.Tensor
    c: torch.Tensor


@dataclass(frozen=True)
class NetworkConfig:
    """Sizes of the actor-critic network."""

    obs_dim: int  # F
    n_slots: int  # S
    n_blueprints: int
    feature_dim: int
    hidden_dim: int  # H
    embedding_dim: int  # per-slot blueprint embedding
    recurrent: bool  # lstm (True) or mlp (False)

    @property
    def head_sizes(self) -> tuple[int, ...]:
        """Options per action head, in HEADS order."""
        return head_sizes(self.n_slots, self.n_blueprints)


@dataclass(frozen=True)
class PolicyOutput:
    """The network's outputs over a sequence."""

    logits: list[torch.Tensor]  # per head, (T, N, n_head)
    values: torch.Tensor  # (T, N)
    state: LSTMState | None  # after the last step; None for the mlp
    hidden: torch.Tensor | None  # LSTM outputs (T, N, H) and cells are in `cells`
    cells: torch.Tensor | None  # (T, N, H)


def _head(hidden: int, out: int, depth: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = hidden
    for _ in range(depth):
        layers += [nn.Linear(width, hidden // 2), nn.ReLU()]
        width = hidden // 2
    layers.append(nn.Linear(width, out))
    return nn.Sequential(*layers)


class FactoredActorCritic(nn.Module):
    """Actor-critic over the factored action space (see module docstring)."""

    def __init__(self, config: NetworkConfig) -> None:
        super().__init__()
        self.config = config
        self.blueprint_embedding = nn.Embedding(config.n_blueprints + 1, config.embedding_dim)
        in_dim = config.obs_dim + config.n_slots * config.embedding_dim
        self.features = nn.Sequential(nn.Linear(in_dim, config.feature_dim),
                                      nn.LayerNorm(config.feature_dim), nn.ReLU())
        if config.recurrent:
            self.lstm = nn.LSTMCell(config.feature_dim, config.hidden_dim)
            self.lstm_norm = nn.LayerNorm(config.hidden_dim)
        else:
            self.hidden = nn.Sequential(nn.Linear(config.feature_dim, config.hidden_dim), nn.ReLU())
        self.residual = nn.Linear(config.feature_dim, config.hidden_dim, bias=False)
        self.heads = nn.ModuleList(
            _head(config.hidden_dim, size, 2 if name == "blueprint" else 1)
            for name, size in zip(HEADS, config.head_sizes))
        self.value_head = _head(config.hidden_dim, 1, 1)

    def initial_state(self, n_envs: int) -> LSTMState | None:
        """Zero state at episode start (None for the mlp)."""
        if not self.config.recurrent:
            return None
        zeros = torch.zeros(n_envs, self.config.hidden_dim)
        return LSTMState(zeros, zeros.clone())

    def forward(self, obs: torch.Tensor, blueprints: torch.Tensor,
                state: LSTMState | None) -> PolicyOutput:
        """Run over a sequence: obs (T, N, F), blueprint indices (T, N, S), state at step 0."""
        T, N = obs.shape[:2]
        embedded = self.blueprint_embedding(blueprints).flatten(2)  # (T, N, S*E)
        x = self.features(torch.cat([obs, embedded], dim=-1))  # (T, N, feature)
        if self.config.recurrent:
            assert state is not None, "the lstm policy needs its state"
            h, c = state
            outputs, cells = [], []
            for t in range(T):
                h, c = self.lstm(x[t], (h, c))  # (N, H) each
                outputs.append(h)
                cells.append(c)
            hidden_raw = torch.stack(outputs)  # (T, N, H)
            cell_raw = torch.stack(cells)
            core = self.lstm_norm(hidden_raw) + self.residual(x)
            new_state: LSTMState | None = LSTMState(h, c)
        else:
            core = self.hidden(x) + self.residual(x)  # (T, N, H)
            hidden_raw = cell_raw = None
            new_state = None
        logits = [head(core) for head in self.heads]
        values = self.value_head(core).squeeze(-1)  # (T, N)
        return PolicyOutput(logits, values, new_state, hidden_raw, cell_raw)
