"""MATLAB's loss of a network with several output layers."""

from __future__ import annotations

import torch
from torch import nn


class MatlabLossSum(nn.Module):
    """Several output layers: MATLAB trains on the sum of their losses."""

    def __init__(self, *losses: nn.Module) -> None:
        super().__init__()
        self.losses = nn.ModuleList(losses)

    def forward(
        self, outputs: tuple[torch.Tensor, ...], targets: tuple[torch.Tensor, ...]
    ) -> torch.Tensor:
        parts = [
            loss(y, t) for loss, y, t in zip(self.losses, outputs, targets, strict=True)
        ]
        return torch.stack(parts).sum()
