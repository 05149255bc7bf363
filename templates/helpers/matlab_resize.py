"""MATLAB resize2dLayer/resize3dLayer for the modes F.interpolate lacks."""

from __future__ import annotations

import torch
from torch import nn


class MatlabResize(nn.Module):
    """Resize with MATLAB's coordinate transforms and rounding.

    Source coordinates (0-based) are (dst + 0.5) / scale - 0.5 ('half-pixel')
    or dst / scale ('asymmetric'), clamped to the input; 'nearest' then rounds
    them half up ('round'), down ('floor'), or like ONNX opset 10 ('onnx-10':
    up when shrinking, down otherwise); 'linear' blends the two neighbours.
    """

    def __init__(
        self,
        scale_factor: tuple[float, ...] | None = None,
        size: tuple[int, ...] | None = None,
        method: str = "nearest",
        transform: str = "half-pixel",
        rounding: str = "round",
    ) -> None:
        super().__init__()
        self.scale_factor, self.size = scale_factor, size
        self.method, self.transform, self.rounding = method, transform, rounding

    def forward(
        self, x: torch.Tensor, size: tuple[int, ...] | torch.Size | None = None
    ) -> torch.Tensor:
        spatial = tuple(x.shape[2:])
        out_size = tuple(size or self.size or ())
        if not out_size and self.scale_factor is not None:
            out_size = tuple(
                int(s * f) for s, f in zip(spatial, self.scale_factor, strict=True)
            )
        scales = self.scale_factor or tuple(
            o / s for o, s in zip(out_size, spatial, strict=True)
        )
        for axis, (length, out, scale) in enumerate(
            zip(spatial, out_size, scales, strict=True)
        ):
            x = self._resize(x, 2 + axis, length, out, scale)
        return x

    def _resize(
        self, x: torch.Tensor, dim: int, length: int, out: int, scale: float
    ) -> torch.Tensor:
        dst = torch.arange(out, dtype=torch.float64, device=x.device)
        src = (
            (dst + 0.5) / scale - 0.5 if self.transform == "half-pixel" else dst / scale
        )
        src = src.clamp(0, length - 1)
        if self.method == "nearest":
            if self.rounding == "round":
                src = torch.floor(src + 0.5)
            elif self.rounding == "floor" or scale >= 1:
                src = torch.floor(src)
            else:
                src = torch.ceil(src)
            return x.index_select(dim, src.long().clamp(0, length - 1))
        low = src.floor().long()
        high = (low + 1).clamp(max=length - 1)
        shape = [1] * x.dim()
        shape[dim] = out
        frac = (src - low).to(x.dtype).view(shape)
        return x.index_select(dim, low) * (1 - frac) + x.index_select(dim, high) * frac
