"""Convolutions: kernels move from MATLAB's H×W×C×F to PyTorch's F×C×H×W."""

from __future__ import annotations

import numpy as np

from codegen.ir import Call, PaddedModule, TensorType
from codegen.layers import (
    Layer,
    LayerError,
    collapse,
    make_pad,
    mat_reshape,
    output_spatial,
    padding_value,
    register,
    spatial_padding,
    symmetric_padding,
)


def _expect_images(layer: Layer, ndim: int) -> TensorType:
    t = layer.in_type
    if len(t.spatial) != ndim or t.time:
        kind = {1: "1-D", 2: "2-D", 3: "3-D"}[ndim]
        raise LayerError(
            f"it expects {kind} images but receives {t.format} data ({t.matlab}).",
            hint="Sequence inputs to this layer are not supported yet.",
        )
    return t


def _bias(layer: Layer, count: int) -> np.ndarray | None:
    bias = layer.learnable("Bias")
    return None if bias is None else mat_reshape(bias, (count,), "Bias")


@register(
    "nnet.cnn.layer.Convolution2DLayer",
    torch="nn.Conv2d (+ F.pad / same_padding / pad_symmetric)",
)
def conv2d(layer: Layer) -> PaddedModule:
    t = _expect_images(layer, 2)
    kernel = layer.integers("FilterSize", 2)
    stride = layer.integers("Stride", 2, 1)
    dilation = layer.integers("DilationFactor", 2, 1)
    pads, dynamic = spatial_padding(layer, kernel, stride, dilation)
    mode, value = padding_value(layer)

    filters = np.asarray(layer.raw("NumFilters", 0)).ravel()
    groups = max(int(filters.size), 1)  # AlexNet-era filter groups: [128 128]
    out_c = int(filters.sum()) if filters.size else 0
    in_c = t.channels
    if in_c % groups:
        raise LayerError(f"{in_c} input channels cannot be split into {groups} groups.")
    weights = layer.learnable("Weights")
    params: dict[str, np.ndarray] = {}
    if weights is not None:
        if not out_c:
            out_c = weights.size // (kernel[0] * kernel[1] * (in_c // groups))
        w = mat_reshape(weights, (*kernel, in_c // groups, out_c), "Weights")
        params["weight"] = w.transpose(3, 2, 0, 1)
        bias = _bias(layer, out_c)
        if bias is not None:
            params["bias"] = bias
    if not out_c:
        raise LayerError("its NumFilters is unknown and it has no weights.")

    kwargs: list[tuple[str, object]] = [("kernel_size", collapse(kernel))]
    if stride != (1, 1):
        kwargs.append(("stride", collapse(stride)))
    pad = make_pad(pads, dynamic, kernel, stride, dilation, mode, value)
    foldable = mode in ("replicate", "reflect") or (mode == "constant" and value == 0)
    if not dynamic and symmetric_padding(pads) and foldable and any(pads):
        kwargs.append(("padding", collapse(pads[:2])))
        if mode != "constant":
            kwargs.append(("padding_mode", mode))
        pad = make_pad((0, 0, 0, 0), False, kernel, stride, dilation)
    if dilation != (1, 1):
        kwargs.append(("dilation", collapse(dilation)))
    if groups > 1:
        kwargs.append(("groups", groups))
    if weights is not None and "bias" not in params:
        kwargs.append(("bias", False))
    spatial = output_spatial(t.spatial, kernel, stride, dilation, pads, dynamic)
    return PaddedModule(
        **layer.common(),
        module=Call("nn.Conv2d", (in_c, out_c), tuple(kwargs)),
        params=params,
        pad=pad,
        helpers=_pad_helpers(pad),
        out_types=(TensorType(spatial=spatial, channels=out_c),),
    )


def _pad_helpers(pad: object) -> tuple[str, ...]:
    helpers = []
    if getattr(pad, "same", None) is not None:
        helpers.append("same_padding")
    if getattr(pad, "mode", "") == "symmetric":
        helpers.append("pad_symmetric")
    return tuple(helpers)


@register(
    "nnet.cnn.layer.TransposedConvolution2DLayer", torch="nn.ConvTranspose2d (+ crop)"
)
def transposed_conv2d(layer: Layer) -> PaddedModule:
    t = _expect_images(layer, 2)
    kernel = layer.integers("FilterSize", 2)
    stride = layer.integers("Stride", 2, 1)
    in_c = t.channels
    out_c = int(layer.number("NumFilters", 0))
    weights = layer.learnable("Weights")
    params: dict[str, np.ndarray] = {}
    if weights is not None:
        if not out_c:
            out_c = weights.size // (kernel[0] * kernel[1] * in_c)
        # MATLAB stores H×W×F_out×C_in; PyTorch wants C_in×F_out×H×W.
        w = mat_reshape(weights, (*kernel, out_c, in_c), "Weights")
        params["weight"] = w.transpose(3, 2, 0, 1)
        bias = _bias(layer, out_c)
        if bias is not None:
            params["bias"] = bias
    if not out_c:
        raise LayerError("its NumFilters is unknown and it has no weights.")

    before, after, offset = _transposed_cropping(layer, kernel, stride)
    spatial = tuple(
        stride[i] * (t.spatial[i] - 1) + kernel[i] - before[i] - after[i] + offset[i]
        for i in range(2)
    )
    if min(spatial) < 1:
        raise LayerError("its cropping leaves an empty output.")
    kwargs: list[tuple[str, object]] = [("kernel_size", collapse(kernel))]
    if stride != (1, 1):
        kwargs.append(("stride", collapse(stride)))
    crop: tuple[int, ...] = ()
    if before == after:
        if any(before):
            kwargs.append(("padding", collapse(before)))
    else:
        crop = (before[1], after[1], before[0], after[0])
    if any(offset):
        if any(o >= s for o, s in zip(offset, stride, strict=True)):
            raise LayerError(
                f"its output size offset {offset} is not below its stride."
            )
        kwargs.append(("output_padding", collapse(offset)))
    if weights is not None and "bias" not in params:
        kwargs.append(("bias", False))
    return PaddedModule(
        **layer.common(),
        module=Call("nn.ConvTranspose2d", (in_c, out_c), tuple(kwargs)),
        params=params,
        crop=crop,
        out_types=(TensorType(spatial=spatial, channels=out_c),),
    )


def _transposed_cropping(
    layer: Layer, kernel: tuple[int, ...], stride: tuple[int, ...]
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """Crop before/after per dim and the output size offset, MATLAB's rules."""
    n = len(kernel)
    mode = layer.text("CroppingMode", "manual").lower()
    if mode == "same":
        totals = [k - s for k, s in zip(kernel, stride, strict=True)]
        before = tuple(max(tot, 0) // 2 for tot in totals)
        after = tuple(max(tot, 0) - b for tot, b in zip(totals, before, strict=True))
        offset = tuple(max(-tot, 0) for tot in totals)
        return before, after, offset
    if layer.has("CroppingSize"):
        size = np.broadcast_to(np.asarray(layer.raw("CroppingSize")).ravel(), (4,))
        t, b, left, r = (int(v) for v in size)
        before, after = (t, left), (b, r)
    elif layer.has("Cropping"):  # older releases: [vertical horizontal]
        vh = layer.integers("Cropping", n)
        before, after = vh, vh
    else:
        before = after = (0,) * n
    offset = (
        layer.integers("OutputSizeOffset", n, 0)
        if layer.has("OutputSizeOffset")
        else (0,) * n
    )
    return before, after, tuple(abs(o) for o in offset)
