"""Running mean / variance (Chan et al.'s parallel update), for observations and rewards."""

from __future__ import annotations

import torch

CLIP = 10.0  # normalised observations are clipped to +-CLIP


class RunningMeanStd:
    """Running statistics of a stream of vectors of shape `shape`."""

    def __init__(self, shape: tuple[int, ...] = (), epsilon: float = 1e-4) -> None:
        self.mean = torch.zeros(shape, dtype=torch.float64)
        self.var = torch.ones(shape, dtype=torch.float64)
        self.count = epsilon

    def update(self, batch: torch.Tensor) -> None:
        """Fold in a batch (B, *shape); a sample with a NaN or an infinity is left out (one
        would make the statistics NaN for the rest of the run)."""
        batch = batch.double().reshape(-1, *self.mean.shape)
        batch = batch[torch.isfinite(batch).reshape(batch.shape[0], -1).all(dim=1)]
        if batch.shape[0] == 0:
            return
        batch_mean, batch_var, n = batch.mean(0), batch.var(0, unbiased=False), batch.shape[0]
        delta, total = batch_mean - self.mean, self.count + n
        self.mean = self.mean + delta * n / total
        self.var = (self.var * self.count + batch_var * n + delta**2 * self.count * n / total) / total
        self.count = total

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """(x - mean) / std, clipped to +-10."""
        z = (x - self.mean.float()) / torch.sqrt(self.var.float() + 1e-8)
        return z.clamp(-CLIP, CLIP)

    def scale(self, x: torch.Tensor, clip: float) -> torch.Tensor:
        """x / std, clipped to +-clip (rewards keep their sign and zero)."""
        return (x / torch.sqrt(self.var.float() + 1e-8)).clamp(-clip, clip)

    def state_dict(self) -> dict[str, object]:
        return {"mean": self.mean, "var": self.var, "count": self.count}

    def load_state_dict(self, state: dict[str, object]) -> None:
        self.mean, self.var, self.count = state["mean"], state["var"], state["count"]  # type: ignore[assignment]
