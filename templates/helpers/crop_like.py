"""MATLAB crop2dLayer."""

from __future__ import annotations

import torch


def crop_like(
    x: torch.Tensor, ref: torch.Tensor, top_left: tuple[int, int] | None = None
) -> torch.Tensor:
    """Cut x's height and width down to ref's.

    Without ``top_left`` it crops the centre, offset floor(X/2) - floor(Y/2)
    per dimension (MATLAB's floor(X/2+1) - floor(Y/2+1) in 1-based terms).
    """
    height, width = ref.shape[-2:]
    if top_left is None:
        top_left = (x.shape[-2] // 2 - height // 2, x.shape[-1] // 2 - width // 2)
    top, left = top_left
    return x[..., top : top + height, left : left + width]
