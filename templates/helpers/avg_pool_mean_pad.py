class AvgPoolMeanPad2d(nn.Module):
    """MATLAB average pooling with PaddingValue 'mean'.

    Padded elements do not count: each window's sum is divided by the number
    of real elements in it. ``padding`` is in F.pad order, or "same".
    """

    def __init__(
        self,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int],
        padding: tuple[int, int, int, int] | str,
    ) -> None:
        super().__init__()
        self.kernel_size = (kernel_size,) * 2 if isinstance(kernel_size, int) else kernel_size
        self.stride = (stride,) * 2 if isinstance(stride, int) else stride
        self.padding = padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = self.padding
        if pads == "same":
            pads = same_padding(x, self.kernel_size, self.stride)
        ones = F.pad(torch.ones_like(x[:, :1]), pads)
        x = F.pad(x, pads)
        total = F.avg_pool2d(x, self.kernel_size, self.stride)
        count = F.avg_pool2d(ones, self.kernel_size, self.stride)
        return total / count
