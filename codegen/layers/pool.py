"""Pooling and unpooling layers.

MATLAB pads max pooling with -realmax (PyTorch: -inf) and, with the default
PaddingValue 0, divides an average window by its full size
(``count_include_pad=True``); PaddingValue 'mean' averages only the real
elements (``count_include_pad=False``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from codegen.ir import (
    Call,
    ModuleNode,
    Node,
    Pad,
    PaddedModule,
    PadMode,
    Relayout,
    TensorType,
)
from codegen.layers import (
    Layer,
    LayerError,
    collapse,
    make_pad,
    output_spatial,
    register,
    spatial_padding,
    symmetric_padding,
    to_time_last,
)
from codegen.layers.conv import expect_images


@dataclass(frozen=True, kw_only=True, eq=False)
class UnpoolingMaxPool(ModuleNode):
    """Max pooling that also outputs the argmax indices and the input size."""

    template: ClassVar[str] = "max_pool_indices"

    def hookable(self) -> bool:
        return False  # its module's output is not the layer's output


@dataclass(frozen=True, kw_only=True, eq=False)
class MaxUnpool(ModuleNode):
    template: ClassVar[str] = "max_unpool"


def _window(layer: Layer, n: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    kernel = layer.integers("PoolSize", n)
    stride = layer.integers("Stride", n, 1)
    return kernel, stride


def _foldable(pads: tuple[int, ...], kernel: tuple[int, ...]) -> bool:
    # PyTorch pools pad symmetrically and at most half the window.
    n = len(kernel)
    return symmetric_padding(pads) and all(pads[i] <= kernel[i] // 2 for i in range(n))


def _pool_input(layer: Layer, nd: int) -> tuple[TensorType, bool]:
    """The input type, and whether a 1-D pool runs along a sequence's time."""
    t = layer.in_type
    if nd == 1 and t.format == "CT":
        return t, True
    return expect_images(layer, nd), False


def _pooled(
    t: TensorType,
    over_time: bool,
    kernel: tuple[int, ...],
    stride: tuple[int, ...],
    pads: tuple[int, ...],
    dynamic: bool,
) -> TensorType:
    if over_time:  # a sequence's length is only known at run time
        return TensorType(channels=t.channels, time=True, time_last=True)
    dil = (1,) * len(kernel)
    spatial = output_spatial(t.spatial, kernel, stride, dil, pads, dynamic)
    return TensorType(spatial=spatial, channels=t.channels)


def _max_pool(layer: Layer, nd: int) -> ModuleNode:
    t, over_time = _pool_input(layer, nd)
    kernel, stride = _window(layer, nd)
    pads, dynamic = spatial_padding(layer, kernel, stride, (1,) * nd)
    kwargs: list[tuple[str, object]] = [("stride", collapse(stride))]
    pad = Pad()
    if dynamic or not _foldable(pads, kernel):
        pad = make_pad(
            pads, dynamic, kernel, stride, (1,) * nd, PadMode.CONSTANT, -math.inf
        )
    elif any(pads):
        kwargs.append(("padding", collapse(pads[:nd])))
    out = _pooled(t, over_time, kernel, stride, pads, dynamic)
    if layer.flag("HasUnpoolingOutputs"):
        if pad.needed or over_time:
            raise LayerError(
                "max pooling with unpooling outputs is supported for images with "
                "symmetric padding only (PyTorch's indices refer to the unpadded input)."
            )
        call = Call(
            f"nn.MaxPool{nd}d", (collapse(kernel),), (*kwargs, ("return_indices", True))
        )
        return UnpoolingMaxPool(
            **layer.common(),
            module=call,
            port_names=("out", "indices", "size"),
            out_types=(out, out, t),
        )
    return PaddedModule(
        **layer.common(),
        module=Call(f"nn.MaxPool{nd}d", (collapse(kernel),), tuple(kwargs)),
        pad=pad,
        pre=to_time_last(t) if over_time else Relayout.NONE,
        helpers=("same_padding",) if dynamic else (),
        out_types=(out,),
    )


@register("nnet.cnn.layer.MaxPooling2DLayer", torch="nn.MaxPool2d (+ -inf padding)")
def max_pool2d(layer: Layer) -> ModuleNode:
    return _max_pool(layer, 2)


@register("nnet.cnn.layer.MaxPooling3DLayer", torch="nn.MaxPool3d (+ -inf padding)")
def max_pool3d(layer: Layer) -> ModuleNode:
    return _max_pool(layer, 3)


def _avg_pool(layer: Layer, nd: int) -> PaddedModule:
    t, over_time = _pool_input(layer, nd)
    kernel, stride = _window(layer, nd)
    pads, dynamic = spatial_padding(layer, kernel, stride, (1,) * nd)
    value = layer.raw("PaddingValue", 0.0)
    exclude = isinstance(value, str) and value == "mean"
    if not exclude and isinstance(value, str):
        raise LayerError(f"PaddingValue '{value}' is not known.")
    if not exclude and float(np.asarray(value).ravel()[0]) != 0.0:
        raise LayerError("a non-zero average pooling PaddingValue is not supported.")
    out_type = _pooled(t, over_time, kernel, stride, pads, dynamic)
    pre = to_time_last(t) if over_time else Relayout.NONE
    kwargs: list[tuple[str, object]] = [("stride", collapse(stride))]
    cls = f"nn.AvgPool{nd}d"
    if not any(pads) and not dynamic:
        call = Call(cls, (collapse(kernel),), tuple(kwargs))
        return PaddedModule(
            **layer.common(), module=call, pre=pre, out_types=(out_type,)
        )
    if not dynamic and _foldable(pads, kernel):
        kwargs.append(("padding", collapse(pads[:nd])))
        if exclude:
            kwargs.append(("count_include_pad", False))
        call = Call(cls, (collapse(kernel),), tuple(kwargs))
        return PaddedModule(
            **layer.common(), module=call, pre=pre, out_types=(out_type,)
        )
    pad = make_pad(pads, dynamic, kernel, stride, (1,) * nd)
    if exclude:
        if nd != 2:
            raise LayerError(
                "'mean' padding with asymmetric pads is supported in 2-D only."
            )
        # Asymmetric padding whose zeros must not count: a small helper
        # divides the zero-padded window sum by the number of real elements.
        padding = "same" if dynamic else pad.amounts
        return PaddedModule(
            **layer.common(),
            module=Call(
                "AvgPoolMeanPad2d", (collapse(kernel),), (*kwargs, ("padding", padding))
            ),
            pre=pre,
            helpers=("avg_pool_mean_pad", *(("same_padding",) if dynamic else ())),
            out_types=(out_type,),
        )
    return PaddedModule(
        **layer.common(),
        module=Call(cls, (collapse(kernel),), tuple(kwargs)),
        pad=pad,
        pre=pre,
        helpers=("same_padding",) if dynamic else (),
        out_types=(out_type,),
    )


@register(
    "nnet.cnn.layer.AveragePooling2DLayer",
    torch="nn.AvgPool2d / AvgPoolMeanPad2d",
)
def avg_pool2d(layer: Layer) -> PaddedModule:
    return _avg_pool(layer, 2)


@register("nnet.cnn.layer.MaxPooling1DLayer", torch="nn.MaxPool1d (over time: N×C×T)")
def max_pool1d(layer: Layer) -> ModuleNode:
    return _max_pool(layer, 1)


@register(
    "nnet.cnn.layer.AveragePooling1DLayer", torch="nn.AvgPool1d (over time: N×C×T)"
)
def avg_pool1d(layer: Layer) -> PaddedModule:
    return _avg_pool(layer, 1)


@register("nnet.cnn.layer.AveragePooling3DLayer", torch="nn.AvgPool3d")
def avg_pool3d(layer: Layer) -> PaddedModule:
    return _avg_pool(layer, 3)


def _global(layer: Layer, nd: int, kind: str) -> ModuleNode:
    t = expect_images(layer, nd)
    return ModuleNode(
        **layer.common(),
        module=Call(f"nn.Adaptive{kind}Pool{nd}d", (1,)),
        out_types=(TensorType(spatial=(1,) * nd, channels=t.channels),),
    )


@register("nnet.cnn.layer.GlobalAveragePooling2DLayer", torch="nn.AdaptiveAvgPool2d(1)")
def global_avg_pool2d(layer: Layer) -> ModuleNode:
    return _global(layer, 2, "Avg")


@register("nnet.cnn.layer.GlobalMaxPooling2DLayer", torch="nn.AdaptiveMaxPool2d(1)")
def global_max_pool2d(layer: Layer) -> ModuleNode:
    return _global(layer, 2, "Max")


@register("nnet.cnn.layer.GlobalAveragePooling3DLayer", torch="nn.AdaptiveAvgPool3d(1)")
def global_avg_pool3d(layer: Layer) -> ModuleNode:
    return _global(layer, 3, "Avg")


@register("nnet.cnn.layer.GlobalMaxPooling3DLayer", torch="nn.AdaptiveMaxPool3d(1)")
def global_max_pool3d(layer: Layer) -> ModuleNode:
    return _global(layer, 3, "Max")


@dataclass(frozen=True, kw_only=True, eq=False)
class Reduce(Node):
    """Global pooling over a sequence's time (or a 1-D image's length)."""

    template: ClassVar[str] = "reduce"
    op: str  # "mean" or "amax"
    dim: int
    keepdim: bool = False


def _global1d(layer: Layer, op: str) -> Reduce:
    t = layer.in_type
    if t.format == "CT":
        dim = 2 if t.time_last else 1
        out = TensorType(channels=t.channels)
        return Reduce(**layer.common(), op=op, dim=dim, out_types=(out,))
    if t.format == "SC":
        out = TensorType(spatial=(1,), channels=t.channels)
        return Reduce(**layer.common(), op=op, dim=2, keepdim=True, out_types=(out,))
    raise LayerError(
        f"it expects sequences or 1-D images but receives {t.format} data."
    )


@register("nnet.cnn.layer.GlobalAveragePooling1DLayer", torch="x.mean over time")
def global_avg_pool1d(layer: Layer) -> Reduce:
    return _global1d(layer, "mean")


@register("nnet.cnn.layer.GlobalMaxPooling1DLayer", torch="x.amax over time")
def global_max_pool1d(layer: Layer) -> Reduce:
    return _global1d(layer, "amax")


@register(
    "nnet.cnn.layer.MaxUnpooling2DLayer",
    torch="nn.MaxUnpool2d with the pooling layer's indices and size",
)
def max_unpool2d(layer: Layer) -> MaxUnpool:
    if len(layer.inputs) != 3:
        raise LayerError("it needs its 'in', 'indices' and 'size' inputs connected.")
    pool = layer.sources[1]
    if not isinstance(pool, UnpoolingMaxPool) or layer.sources[2] is not pool:
        raise LayerError(
            "its 'indices' and 'size' inputs must come from one max pooling layer "
            "with HasUnpoolingOutputs."
        )
    kernel = pool.module.args[0]
    stride = dict(pool.module.kwargs)["stride"]
    size_type = layer.in_types[2]
    return MaxUnpool(
        **layer.common(),
        module=Call("nn.MaxUnpool2d", (kernel,), (("stride", stride),)),
        out_types=(
            TensorType(spatial=size_type.spatial, channels=layer.in_type.channels),
        ),
    )
