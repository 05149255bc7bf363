class MatlabResize(nn.Module):
    """MATLAB resize2dLayer/resize3dLayer for modes F.interpolate lacks.

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

    def forward(self, x: torch.Tensor, size: tuple[int, ...] | None = None) -> torch.Tensor:
        spatial = x.shape[2:]
        size = size or self.size
        if size is None:
            size = [int(s * f) for s, f in zip(spatial, self.scale_factor)]
        scales = self.scale_factor or [o / s for o, s in zip(size, spatial)]
        for axis, (length, out, scale) in enumerate(zip(spatial, size, scales)):
            dim = 2 + axis
            dst = torch.arange(out, dtype=torch.float64, device=x.device)
            if self.transform == "half-pixel":
                src = (dst + 0.5) / scale - 0.5
            else:
                src = dst / scale
            src = src.clamp(0, length - 1)
            if self.method == "nearest":
                if self.rounding == "round":
                    src = torch.floor(src + 0.5)
                elif self.rounding == "floor" or scale >= 1:
                    src = torch.floor(src)
                else:
                    src = torch.ceil(src)
                x = x.index_select(dim, src.long().clamp(0, length - 1))
            else:
                low = src.floor().long()
                high = (low + 1).clamp(max=length - 1)
                shape = [1] * x.dim()
                shape[dim] = out
                frac = (src - low).to(x.dtype).view(shape)
                x = x.index_select(dim, low) * (1 - frac) + x.index_select(dim, high) * frac
        return x
