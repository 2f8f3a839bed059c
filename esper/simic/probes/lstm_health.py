"""`lstm_health` (TELE-340): is the LSTM's hidden state (h, c) finite and of a sane size?

Statistics of one (h, c) vector pair: the L2 norm of h and of c, max |x| of each, and whether
either holds a NaN or an infinity. They are computed on the device and reach the host in one
transfer per measurement:
- in the PPO update, after every evaluation of the actions, over the raw LSTM outputs of the
  whole rollout (T, N, H): norms averaged over the (step, env) vectors, maxima and flags over
  all of them; the update's epochs are then combined (mean of norms, max of maxima, OR of
  flags), and the update's six fields are read back once;
- in the rollout, after every act, per env; an unhealthy env raises one LSTM_HEALTH_WARNING per
  episode (NaN, Inf, or a norm outside [min_norm, max_norm], `telemetry.lstm_health`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from esper.leyline.config import LSTMHealthOptions
from esper.leyline.emitter import Emitter
from esper.leyline.events import (LSTMHealthWarningPayload, PPOUpdatePayload, Severity,
                                  TelemetryEventType)
from esper.tamiyo.actor_critic import LSTMState

# Columns of a statistics row.
H_NORM, C_NORM, H_MAX, C_MAX, HAS_NAN, HAS_INF = range(6)
_NORMS, _MAXIMA = [H_NORM, C_NORM], [H_MAX, C_MAX, HAS_NAN, HAS_INF]


@dataclass(frozen=True)
class LSTMHealth:
    """The six statistics of one measurement (or of an update's measurements combined)."""

    h_norm: float
    c_norm: float
    h_max: float
    c_max: float
    has_nan: bool
    has_inf: bool

    @classmethod
    def of_row(cls, row: list[float]) -> LSTMHealth:
        """From a statistics row read back from the device."""
        return cls(row[H_NORM], row[C_NORM], row[H_MAX], row[C_MAX], bool(row[HAS_NAN]),
                   bool(row[HAS_INF]))


def vector_statistics(h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Statistics of each (h, c) vector pair: (..., H) each -> (..., 6), flags as 0 / 1.

    NaN propagates into the norms and maxima (torch's max keeps NaN), so a NaN state is never
    reported with a healthy-looking norm.
    """
    with torch.no_grad():
        return torch.stack([
            torch.linalg.vector_norm(h, dim=-1), torch.linalg.vector_norm(c, dim=-1),
            h.abs().amax(dim=-1), c.abs().amax(dim=-1),
            (h.isnan().any(dim=-1) | c.isnan().any(dim=-1)).float(),
            (h.isinf().any(dim=-1) | c.isinf().any(dim=-1)).float(),
        ], dim=-1)


def _combine(rows: torch.Tensor) -> torch.Tensor:
    """(M, 6) rows -> (6,): mean of the norms, max of the maxima and of the flags."""
    combined = rows.amax(dim=0)
    combined[_NORMS] = rows[:, _NORMS].mean(dim=0)
    return combined


class UpdateLSTMHealth:
    """The LSTM-health measurements of one PPO update, one per evaluation of the actions."""

    def __init__(self) -> None:
        self._rows: list[torch.Tensor] = []  # (6,) per evaluation, on the device

    def observe(self, hidden: torch.Tensor, cells: torch.Tensor) -> None:
        """Measure the raw LSTM outputs h and c of one evaluation, (T, N, H) each."""
        self._rows.append(_combine(vector_statistics(hidden, cells).flatten(0, -2)))

    def result(self) -> LSTMHealth:
        """The update's statistics over its evaluations (the one device-to-host transfer)."""
        assert self._rows, "no evaluation was measured"
        return LSTMHealth.of_row(_combine(torch.stack(self._rows)).tolist())


def with_lstm_health(metrics: PPOUpdatePayload, health: LSTMHealth) -> PPOUpdatePayload:
    """`metrics` with the six lstm_* fields measured."""
    return replace(metrics, lstm_h_norm=health.h_norm, lstm_c_norm=health.c_norm,
                   lstm_h_max=health.h_max, lstm_c_max=health.c_max,
                   lstm_has_nan=health.has_nan, lstm_has_inf=health.has_inf)


def unhealthy_reason(health: LSTMHealth, options: LSTMHealthOptions) -> str | None:
    """Why a state is unhealthy (the first of nan, inf, norm_above_max, norm_below_min), or None."""
    norms = (health.h_norm, health.c_norm)
    if health.has_nan:
        return "nan"
    if health.has_inf:
        return "inf"
    if max(norms) > options.max_norm:
        return "norm_above_max"
    if min(norms) < options.min_norm:
        return "norm_below_min"
    return None


class RolloutLSTMHealth:
    """Watches each env's hidden state after every act; warns once per env per episode."""

    def __init__(self, options: LSTMHealthOptions) -> None:
        self.options = options
        self._warned: list[bool] = []  # per env, this episode

    def start_episode(self, n_envs: int) -> None:
        self._warned = [False] * n_envs

    def observe(self, state: LSTMState, into: Emitter) -> None:
        """Measure every env's (h, c), (N, H) each, in one transfer; emit the new warnings
        `into`."""
        rows = vector_statistics(state.h, state.c).tolist()  # (N, 6)
        for env_id, row in enumerate(rows):
            health = LSTMHealth.of_row(row)
            reason = unhealthy_reason(health, self.options)
            if reason is None or self._warned[env_id]:
                continue
            self._warned[env_id] = True
            into.emit(
                TelemetryEventType.LSTM_HEALTH_WARNING,
                LSTMHealthWarningPayload(h_norm=health.h_norm, c_norm=health.c_norm,
                                         has_nan=health.has_nan, has_inf=health.has_inf,
                                         reason=reason),
                severity=Severity.WARNING, env_id=env_id,
                message=f"LSTM state unhealthy ({reason}): |h| {health.h_norm:.4g}, "
                        f"|c| {health.c_norm:.4g} (healthy: [{self.options.min_norm:g}, "
                        f"{self.options.max_norm:g}])")
