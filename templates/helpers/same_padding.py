"""MATLAB 'same' padding for strided layers, computed from the input size."""

from __future__ import annotations

import torch


def same_padding(
    x: torch.Tensor,
    kernel_size: tuple[int, ...],
    stride: tuple[int, ...],
    dilation: tuple[int, ...] | None = None,
) -> list[int]:
    """MATLAB 'same' padding for x in F.pad order: odd totals pad more at the end."""
    pads: list[int] = []
    for i in reversed(range(len(kernel_size))):
        size = x.shape[x.dim() - len(kernel_size) + i]
        span = (kernel_size[i] - 1) * (dilation[i] if dilation else 1) + 1
        total = max((-(-size // stride[i]) - 1) * stride[i] + span - size, 0)
        pads += [total // 2, total - total // 2]
    return pads
