"""MATLAB's 'symmetric-include-edge' padding, which F.pad does not have."""

from __future__ import annotations

import torch


def pad_symmetric(x: torch.Tensor, pads: tuple[int, ...] | list[int]) -> torch.Tensor:
    """Mirror x including its edge; ``pads`` is in F.pad order (last dim first)."""
    for i in range(len(pads) // 2):
        dim = x.dim() - 1 - i
        before, after = pads[2 * i], pads[2 * i + 1]
        parts = [x.narrow(dim, 0, before).flip(dim)] if before else []
        parts.append(x)
        if after:
            parts.append(x.narrow(dim, x.shape[dim] - after, after).flip(dim))
        x = torch.cat(parts, dim)
    return x
