"""MATLAB's half-mean-squared-error loss (regressionLayer)."""

from __future__ import annotations

import torch
from torch import nn


class MatlabHalfMSE(nn.Module):
    """MATLAB's regression loss: 0.5 * sum of squared errors per observation, mean over N.

    Sequence-to-sequence (``time_dim`` given): also divided by the sequence length.
    """

    def __init__(self, time_dim: int | None = None) -> None:
        super().__init__()
        self.time_dim = time_dim

    def forward(self, y: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        total = 0.5 * (y - target).square().sum() / y.shape[0]
        if self.time_dim is not None:
            total = total / y.shape[self.time_dim]
        return total
