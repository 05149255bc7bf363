"""MATLAB cross-channel (local response) normalization."""

from __future__ import annotations

import torch
from torch import nn


class CrossChannelNorm(nn.Module):
    """y = x / (k + alpha * (sum of x^2 over the channel window) / size) ** beta.

    For even sizes MATLAB's window reaches (size - 1) // 2 channels back and
    size // 2 ahead; nn.LocalResponseNorm does the opposite.
    """

    def __init__(self, size: int, alpha: float, beta: float, k: float) -> None:
        super().__init__()
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        squares = (x * x).transpose(1, -1)
        squares = nn.functional.pad(squares, ((self.size - 1) // 2, self.size // 2))
        sums = squares.transpose(1, -1).unfold(1, self.size, 1).sum(-1)
        return x / (self.k + self.alpha * sums / self.size) ** self.beta
