"""MATLAB embeddingConcatenationLayer."""

from __future__ import annotations

import torch
from torch import nn


class EmbeddingConcatenation(nn.Module):
    """A learned vector becomes time step 1 of every sequence (T grows by one).

    The same vector is prepended to every observation, like a classification
    token.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first = self.weight.expand(x.shape[0], 1, -1)
        return torch.cat([first, x], dim=1)
