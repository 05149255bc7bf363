def same_padding(
    x: torch.Tensor,
    kernel_size: tuple[int, ...],
    stride: tuple[int, ...],
    dilation: tuple[int, ...] | None = None,
) -> list[int]:
    """MATLAB 'same' padding for x's actual size, in F.pad order.

    The output gets ceil(size / stride) elements per spatial dimension; an odd
    total goes to the bottom/right, as in MATLAB.
    """
    pads: list[int] = []
    dims = len(kernel_size)
    for i in reversed(range(dims)):
        size = x.shape[x.dim() - dims + i]
        span = (kernel_size[i] - 1) * (dilation[i] if dilation else 1) + 1
        total = max((-(-size // stride[i]) - 1) * stride[i] + span - size, 0)
        pads += [total // 2, total - total // 2]
    return pads
