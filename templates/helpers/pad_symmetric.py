def pad_symmetric(x: torch.Tensor, pads: tuple[int, ...]) -> torch.Tensor:
    """MATLAB 'symmetric-include-edge' padding: mirror including the edge.

    ``pads`` is in F.pad order (last dimension first); PyTorch has no such mode.
    """
    for i in range(len(pads) // 2):
        dim = x.dim() - 1 - i
        before, after = pads[2 * i], pads[2 * i + 1]
        parts = [x.narrow(dim, 0, before).flip(dim)] if before else []
        parts.append(x)
        if after:
            parts.append(x.narrow(dim, x.shape[dim] - after, after).flip(dim))
        x = torch.cat(parts, dim)
    return x
