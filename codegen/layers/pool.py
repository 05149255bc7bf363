"""Pooling layers.

MATLAB pads max pooling with -realmax (PyTorch: -inf) and, with the default
PaddingValue 0, divides an average window by its full size
(``count_include_pad=True``); PaddingValue 'mean' averages only the real
elements (``count_include_pad=False``).
"""

from __future__ import annotations

import math

import numpy as np

from codegen.ir import Call, ModuleNode, Pad, PaddedModule, TensorType
from codegen.layers import (
    Layer,
    LayerError,
    collapse,
    make_pad,
    output_spatial,
    register,
    spatial_padding,
    symmetric_padding,
)


def _window(layer: Layer, n: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    kernel = layer.integers("PoolSize", n)
    stride = layer.integers("Stride", n, 1)
    return kernel, stride


def _images(layer: Layer) -> TensorType:
    t = layer.in_type
    if len(t.spatial) != 2 or t.time:
        raise LayerError(f"it expects 2-D images but receives {t.format} data.")
    return t


def _foldable(pads: tuple[int, ...], kernel: tuple[int, ...]) -> bool:
    # PyTorch pools pad symmetrically and at most half the window.
    n = len(kernel)
    return symmetric_padding(pads) and all(pads[i] <= kernel[i] // 2 for i in range(n))


@register("nnet.cnn.layer.MaxPooling2DLayer", torch="nn.MaxPool2d (+ -inf padding)")
def max_pool2d(layer: Layer) -> PaddedModule:
    t = _images(layer)
    if layer.flag("HasUnpoolingOutputs"):
        raise LayerError(
            "max pooling with unpooling outputs is part of graph networks.",
            hint="Graph networks are not supported yet.",
        )
    kernel, stride = _window(layer, 2)
    pads, dynamic = spatial_padding(layer, kernel, stride, (1, 1))
    kwargs: list[tuple[str, object]] = [("stride", collapse(stride))]
    pad = Pad()
    if dynamic or not _foldable(pads, kernel):
        pad = make_pad(pads, dynamic, kernel, stride, (1, 1), "constant", -math.inf)
    elif any(pads):
        kwargs.append(("padding", collapse(pads[:2])))
    return PaddedModule(
        **layer.common(),
        module=Call("nn.MaxPool2d", (collapse(kernel),), tuple(kwargs)),
        pad=pad,
        helpers=("same_padding",) if dynamic else (),
        out_types=(_pooled(t, kernel, stride, pads, dynamic),),
    )


@register(
    "nnet.cnn.layer.AveragePooling2DLayer", torch="nn.AvgPool2d / AvgPoolMeanPad2d"
)
def avg_pool2d(layer: Layer) -> PaddedModule:
    t = _images(layer)
    kernel, stride = _window(layer, 2)
    pads, dynamic = spatial_padding(layer, kernel, stride, (1, 1))
    value = layer.raw("PaddingValue", 0.0)
    exclude = isinstance(value, str) and value == "mean"
    if not exclude and isinstance(value, str):
        raise LayerError(f"PaddingValue '{value}' is not known.")
    if not exclude and float(np.asarray(value).ravel()[0]) != 0.0:
        raise LayerError("a non-zero average pooling PaddingValue is not supported.")
    out_type = _pooled(t, kernel, stride, pads, dynamic)
    kwargs: list[tuple[str, object]] = [("stride", collapse(stride))]
    if not any(pads) and not dynamic:
        call = Call("nn.AvgPool2d", (collapse(kernel),), tuple(kwargs))
        return PaddedModule(**layer.common(), module=call, out_types=(out_type,))
    if not dynamic and _foldable(pads, kernel):
        kwargs.append(("padding", collapse(pads[:2])))
        if exclude:
            kwargs.append(("count_include_pad", False))
        call = Call("nn.AvgPool2d", (collapse(kernel),), tuple(kwargs))
        return PaddedModule(**layer.common(), module=call, out_types=(out_type,))
    pad = make_pad(pads, dynamic, kernel, stride, (1, 1))
    if exclude:
        # Asymmetric padding whose zeros must not count: a small helper
        # divides the zero-padded window sum by the number of real elements.
        padding = "same" if dynamic else pad.amounts
        return PaddedModule(
            **layer.common(),
            module=Call(
                "AvgPoolMeanPad2d",
                (collapse(kernel),),
                (*kwargs, ("padding", padding)),
            ),
            helpers=("avg_pool_mean_pad", *(("same_padding",) if dynamic else ())),
            out_types=(out_type,),
        )
    return PaddedModule(
        **layer.common(),
        module=Call("nn.AvgPool2d", (collapse(kernel),), tuple(kwargs)),
        pad=pad,
        helpers=("same_padding",) if dynamic else (),
        out_types=(out_type,),
    )


def _pooled(
    t: TensorType,
    kernel: tuple[int, ...],
    stride: tuple[int, ...],
    pads: tuple[int, ...],
    dynamic: bool,
) -> TensorType:
    dil = (1,) * len(kernel)
    spatial = output_spatial(t.spatial, kernel, stride, dil, pads, dynamic)
    return TensorType(spatial=spatial, channels=t.channels)


@register("nnet.cnn.layer.GlobalAveragePooling2DLayer", torch="nn.AdaptiveAvgPool2d(1)")
def global_avg_pool2d(layer: Layer) -> ModuleNode:
    t = _images(layer)
    return ModuleNode(
        **layer.common(),
        module=Call("nn.AdaptiveAvgPool2d", (1,)),
        out_types=(TensorType(spatial=(1, 1), channels=t.channels),),
    )


@register("nnet.cnn.layer.GlobalMaxPooling2DLayer", torch="nn.AdaptiveMaxPool2d(1)")
def global_max_pool2d(layer: Layer) -> ModuleNode:
    t = _images(layer)
    return ModuleNode(
        **layer.common(),
        module=Call("nn.AdaptiveMaxPool2d", (1,)),
        out_types=(TensorType(spatial=(1, 1), channels=t.channels),),
    )
