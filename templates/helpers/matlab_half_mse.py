"""MATLAB's half-mean-squared-error loss (regressionLayer)."""

from __future__ import annotations

import torch
from torch import nn


class MatlabHalfMSE(nn.Module):
    """regressionLayer: half the squared error, summed over responses.

    Per observation: 0.5 * sum of (y - t)^2 over all its responses (and
    pixels for image-to-image); for sequence-to-sequence also divided by the
    sequence length (``time_dim``); then the mean over the mini-batch.
    """

    def __init__(self, time_dim: int | None = None) -> None:
        super().__init__()
        self.time_dim = time_dim

    def forward(self, y: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        total = 0.5 * (y - target).square().sum() / y.shape[0]
        if self.time_dim is not None:
            total = total / y.shape[self.time_dim]
        return total
