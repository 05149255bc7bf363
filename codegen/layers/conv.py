"""Convolutions: kernels move from MATLAB's H×W(×D)×C×F to PyTorch's F×C×H×W(×D).

There is no kernel flip: both frameworks cross-correlate. Spatial dimensions
keep their order (MATLAB H, W, D = PyTorch dims 2, 3, 4).
"""

from __future__ import annotations

import numpy as np

from codegen.ir import Call, Pad, PaddedModule, Relayout, TensorType
from codegen.layers import (
    Layer,
    LayerError,
    collapse,
    make_pad,
    mat_array,
    mat_reshape,
    output_spatial,
    padding_value,
    register,
    spatial_padding,
    symmetric_padding,
    to_time_last,
)

KIND = {1: "1-D", 2: "2-D", 3: "3-D"}


def expect_images(layer: Layer, nd: int) -> TensorType:
    t = layer.in_type
    if len(t.spatial) != nd or t.time:
        raise LayerError(
            f"it expects {KIND[nd]} images but receives {t.format} data ({t.matlab}).",
            hint="Check the layer order; MATLAB would reject this network too.",
        )
    return t


def _bias(layer: Layer, count: int) -> np.ndarray | None:
    bias = layer.learnable("Bias")
    return None if bias is None else mat_reshape(bias, (count,), "Bias")


def pad_helpers(pad: Pad) -> tuple[str, ...]:
    helpers = []
    if pad.same is not None:
        helpers.append("same_padding")
    if pad.mode == "symmetric":
        helpers.append("pad_symmetric")
    return tuple(helpers)


def _convolution(
    layer: Layer,
    nd: int,
    *,
    groups: int,
    out_c: int,
    weight: np.ndarray | None,
    over_time: bool = False,
) -> PaddedModule:
    """The module call and padding shared by every convolution kind.

    ``over_time``: a 1-D convolution along a sequence's time axis; it runs on
    N×C×T and its result stays in that layout.
    """
    t = layer.in_type
    kernel = layer.integers("FilterSize", nd)
    stride = layer.integers("Stride", nd, 1)
    dilation = layer.integers("DilationFactor", nd, 1)
    pads, dynamic = spatial_padding(layer, kernel, stride, dilation)
    mode, value = padding_value(layer)
    params: dict[str, np.ndarray] = {}
    if weight is not None:
        params["weight"] = weight
        bias = _bias(layer, out_c)
        if bias is not None:
            params["bias"] = bias
    kwargs: list[tuple[str, object]] = [("kernel_size", collapse(kernel))]
    if any(s != 1 for s in stride):
        kwargs.append(("stride", collapse(stride)))
    pad = make_pad(pads, dynamic, kernel, stride, dilation, mode, value)
    foldable = mode in ("replicate", "reflect") or (mode == "constant" and value == 0)
    if not dynamic and symmetric_padding(pads) and foldable and any(pads):
        kwargs.append(("padding", collapse(pads[:nd])))
        if mode != "constant":
            kwargs.append(("padding_mode", mode))
        pad = Pad()
    if any(d != 1 for d in dilation):
        kwargs.append(("dilation", collapse(dilation)))
    if groups > 1:
        kwargs.append(("groups", groups))
    if weight is not None and "bias" not in params:
        kwargs.append(("bias", False))
    if over_time:
        out = TensorType(channels=out_c, time=True, time_last=True)
    else:
        spatial = output_spatial(t.spatial, kernel, stride, dilation, pads, dynamic)
        out = TensorType(spatial=spatial, channels=out_c)
    return PaddedModule(
        **layer.common(),
        module=Call(f"nn.Conv{nd}d", (t.channels, out_c), tuple(kwargs)),
        params=params,
        pad=pad,
        pre=to_time_last(t) if over_time else Relayout.NONE,
        helpers=pad_helpers(pad),
        out_types=(out,),
    )


def _plain(layer: Layer, nd: int) -> PaddedModule:
    t = expect_images(layer, nd)
    kernel = layer.integers("FilterSize", nd)
    filters = np.asarray(layer.raw("NumFilters", 0)).ravel()
    groups = max(int(filters.size), 1)  # AlexNet-era filter groups: [128 128]
    out_c = int(filters.sum()) if filters.size else 0
    in_c = t.channels
    if in_c % groups:
        raise LayerError(f"{in_c} input channels cannot be split into {groups} groups.")
    weights = layer.learnable("Weights")
    weight = None
    if weights is not None:
        per_group = in_c // groups
        if not out_c:
            out_c = weights.size // (int(np.prod(kernel)) * per_group)
        w = mat_array(weights, (*kernel, per_group, out_c), "Weights")
        weight = w.transpose(nd + 1, nd, *range(nd))
    if not out_c:
        raise LayerError("its NumFilters is unknown and it has no weights.")
    return _convolution(layer, nd, groups=groups, out_c=out_c, weight=weight)


@register(
    "nnet.cnn.layer.Convolution2DLayer",
    torch="nn.Conv2d (+ F.pad / same_padding / pad_symmetric)",
)
def conv2d(layer: Layer) -> PaddedModule:
    return _plain(layer, 2)


@register(
    "nnet.cnn.layer.Convolution3DLayer", torch="nn.Conv3d (+ F.pad / same_padding)"
)
def conv3d(layer: Layer) -> PaddedModule:
    return _plain(layer, 3)


@register(
    "nnet.cnn.layer.GroupedConvolution2DLayer",
    torch="nn.Conv2d(groups=...) (depthwise too)",
)
def grouped_conv2d(layer: Layer) -> PaddedModule:
    t = expect_images(layer, 2)
    kernel = layer.integers("FilterSize", 2)
    groups_value = layer.raw("NumGroups")
    if isinstance(groups_value, str):
        if groups_value != "channel-wise":
            raise LayerError(f"NumGroups '{groups_value}' is not known.")
        groups = t.channels
    else:
        groups = int(layer.number("NumGroups"))
    if t.channels % groups:
        raise LayerError(
            f"{t.channels} input channels cannot be split into {groups} groups."
        )
    per_group = t.channels // groups
    per_group_filters = int(layer.number("NumFiltersPerGroup", 0))
    weights = layer.learnable("Weights")
    weight = None
    if weights is not None:
        if not per_group_filters:
            per_group_filters = weights.size // (
                kernel[0] * kernel[1] * per_group * groups
            )
        w = mat_array(
            weights, (*kernel, per_group, per_group_filters, groups), "Weights"
        )
        # output channel g * Fg + f, as in MATLAB (group-major)
        weight = w.transpose(4, 3, 2, 0, 1).reshape(
            groups * per_group_filters, per_group, *kernel
        )
    if not per_group_filters:
        raise LayerError("its NumFiltersPerGroup is unknown and it has no weights.")
    return _convolution(
        layer, 2, groups=groups, out_c=groups * per_group_filters, weight=weight
    )


def _transposed(layer: Layer, nd: int) -> PaddedModule:
    t = expect_images(layer, nd)
    kernel = layer.integers("FilterSize", nd)
    stride = layer.integers("Stride", nd, 1)
    in_c = t.channels
    out_c = int(layer.number("NumFilters", 0))
    weights = layer.learnable("Weights")
    params: dict[str, np.ndarray] = {}
    if weights is not None:
        if not out_c:
            out_c = weights.size // (int(np.prod(kernel)) * in_c)
        # MATLAB stores spatial×F_out×C_in; PyTorch wants C_in×F_out×spatial.
        w = mat_array(weights, (*kernel, out_c, in_c), "Weights")
        params["weight"] = w.transpose(nd + 1, nd, *range(nd))
        bias = _bias(layer, out_c)
        if bias is not None:
            params["bias"] = bias
    if not out_c:
        raise LayerError("its NumFilters is unknown and it has no weights.")

    before, after, offset = _transposed_cropping(layer, kernel, stride)
    spatial = tuple(
        stride[i] * (t.spatial[i] - 1) + kernel[i] - before[i] - after[i] + offset[i]
        for i in range(nd)
    )
    if min(spatial) < 1:
        raise LayerError("its cropping leaves an empty output.")
    kwargs: list[tuple[str, object]] = [("kernel_size", collapse(kernel))]
    if any(s != 1 for s in stride):
        kwargs.append(("stride", collapse(stride)))
    crop: tuple[int, ...] = ()
    if before == after:
        if any(before):
            kwargs.append(("padding", collapse(before)))
    else:
        crop = tuple(v for i in reversed(range(nd)) for v in (before[i], after[i]))
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
        module=Call(f"nn.ConvTranspose{nd}d", (in_c, out_c), tuple(kwargs)),
        params=params,
        crop=crop,
        out_types=(TensorType(spatial=spatial, channels=out_c),),
    )


@register(
    "nnet.cnn.layer.TransposedConvolution2DLayer",
    torch="nn.ConvTranspose2d (+ crop)",
)
def transposed_conv2d(layer: Layer) -> PaddedModule:
    return _transposed(layer, 2)


@register(
    "nnet.cnn.layer.TransposedConvolution3DLayer",
    torch="nn.ConvTranspose3d (+ crop)",
)
def transposed_conv3d(layer: Layer) -> PaddedModule:
    return _transposed(layer, 3)


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
        size = np.asarray(layer.raw("CroppingSize"), dtype=np.float64)
        if n == 2:
            t, b, left, r = (int(v) for v in np.broadcast_to(size.ravel(), (4,)))
            before, after = (t, left), (b, r)
        else:  # [t l f; b r k], saved column-major
            m = np.reshape(
                np.broadcast_to(size.ravel(order="F"), (2 * n,)), (2, n), order="F"
            )
            before, after = tuple(int(v) for v in m[0]), tuple(int(v) for v in m[1])
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


@register(
    "nnet.cnn.layer.Convolution1DLayer",
    torch="nn.Conv1d over time (N×C×T) or over a 1-D image (+ causal/same padding)",
)
def conv1d(layer: Layer) -> PaddedModule:
    t = layer.in_type
    if t.format not in ("CT", "SC"):
        raise LayerError(
            f"it expects sequences or 1-D images but receives {t.format} data."
        )
    filters = int(layer.number("NumFilters", 0))
    weights = layer.learnable("Weights")
    kernel = layer.integers("FilterSize", 1)
    weight = None
    if weights is not None:
        if not filters:
            filters = weights.size // (kernel[0] * t.channels)
        # MATLAB K×C×F → PyTorch F×C×K
        weight = mat_array(
            weights, (kernel[0], t.channels, filters), "Weights"
        ).transpose(2, 1, 0)
    if not filters:
        raise LayerError("its NumFilters is unknown and it has no weights.")
    return _convolution(
        layer, 1, groups=1, out_c=filters, weight=weight, over_time=t.format == "CT"
    )
