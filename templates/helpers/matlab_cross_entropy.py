"""MATLAB's cross-entropy loss (classificationLayer, pixelClassificationLayer)."""

from __future__ import annotations

import torch
from torch import nn


class MatlabCrossEntropy(nn.Module):
    """MATLAB's crossentropyex: -(1/N) sum of w_j t_j ln y_j over classes and positions.

    ``target``: class indices shaped like the output without its class dim;
    -1 marks an undefined pixel or time step, which MATLAB ignores.
    ``logits=True``: the input is the pre-softmax score (log_softmax).
    """

    def __init__(
        self, class_dim: int, weight: tuple[float, ...] = (), *, logits: bool = False
    ) -> None:
        super().__init__()
        self.class_dim = class_dim
        self.logits = logits
        self.weight = torch.tensor(weight) if weight else None

    def forward(self, y: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.logits:
            log_p = torch.log_softmax(y, self.class_dim)
        else:  # MATLAB takes the log of the softmax output itself
            log_p = torch.log(y.clamp_min(torch.finfo(y.dtype).tiny))
        weight = None if self.weight is None else self.weight.to(y)
        total = nn.functional.nll_loss(
            log_p.movedim(self.class_dim, 1),
            target.long(),
            weight=weight,
            ignore_index=-1,
            reduction="sum",
        )
        return total / y.shape[0]
