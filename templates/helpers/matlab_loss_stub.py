"""The loss of an output layer mat2torch does not translate."""

from __future__ import annotations

import torch
from torch import nn


class MatlabLossNotTranslated(nn.Module):
    """An output layer whose loss mat2torch does not translate: raises when used."""

    def __init__(self, layer: str, matlab_class: str, why: str) -> None:
        super().__init__()
        self.message = (
            f"MATLAB output layer {layer!r} ({matlab_class}) {why} Write this "
            "loss in PyTorch yourself."
        )

    def forward(self, y: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(self.message)
