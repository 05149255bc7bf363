"""MATLAB average pooling with PaddingValue 'mean'."""

from __future__ import annotations

import torch
from torch import nn

from .same_padding import same_padding


class AvgPoolMeanPad2d(nn.Module):
    """Average pooling in which padded elements do not count.

    Each window's sum is divided by the number of real elements in it.
    ``padding`` is in F.pad order, or "same".
    """

    def __init__(
        self,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int],
        padding: tuple[int, int, int, int] | str,
    ) -> None:
        super().__init__()
        self.kernel_size = (
            (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        )
        self.stride = (stride, stride) if isinstance(stride, int) else stride
        self.padding = padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = (
            same_padding(x, self.kernel_size, self.stride)
            if isinstance(self.padding, str)
            else list(self.padding)
        )
        ones = nn.functional.pad(torch.ones_like(x[:, :1]), pads)
        total = nn.functional.avg_pool2d(
            nn.functional.pad(x, pads), self.kernel_size, self.stride
        )
        return total / nn.functional.avg_pool2d(ones, self.kernel_size, self.stride)
