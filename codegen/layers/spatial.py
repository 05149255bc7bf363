"""Cropping, resizing and flattening of spatial data."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from codegen.ir import Call, ModuleNode, Node, TensorType
from codegen.layers import Layer, LayerError, register
from codegen.layers.conv import expect_images


@dataclass(frozen=True, kw_only=True, eq=False)
class Crop(Node):
    template: ClassVar[str] = "crop"
    location: tuple[int, int] | None = None  # (top, left), 0-based; None = centre


@register(
    "nnet.cnn.layer.Crop2DLayer", torch="crop_like helper (MATLAB's centre offsets)"
)
def crop2d(layer: Layer) -> Crop:
    t = expect_images(layer, 2)
    if len(layer.inputs) != 2:
        raise LayerError("it needs both its 'in' and 'ref' inputs connected.")
    ref = layer.in_types[1]
    if any(r > s for r, s in zip(ref.spatial, t.spatial, strict=True)):
        raise LayerError(
            f"its reference ({ref.matlab}) is larger than its input ({t.matlab})."
        )
    mode = layer.text("Mode", "centercrop").lower()
    location = None
    if mode != "centercrop":
        loc = layer.raw("Location")
        if isinstance(loc, str) or loc is None:
            raise LayerError(f"its Location {loc!r} is not a [x y] position.")
        x, y = (int(v) for v in np.ravel(loc)[:2])  # 1-based column, row
        location = (y - 1, x - 1)
    out = TensorType(spatial=ref.spatial, channels=t.channels)
    return Crop(
        **layer.common(), location=location, helpers=("crop_like",), out_types=(out,)
    )


@dataclass(frozen=True, kw_only=True, eq=False)
class Resize(ModuleNode):
    """Resizing: nn.Upsample where PyTorch has MATLAB's mode, else a helper."""

    template: ClassVar[str] = "resize"
    reference: bool = False  # resize to the second input's size


def _resize(layer: Layer, nd: int) -> Resize:
    t = expect_images(layer, nd)
    method = layer.text("Method", "nearest").lower()
    transform = layer.text("GeometricTransformMode", "half-pixel").lower()
    rounding = layer.text("NearestRoundingMode", "round").lower()
    linear = {2: "bilinear", 3: "trilinear"}[nd]
    if method not in ("nearest", "bilinear", "trilinear", "linear"):
        raise LayerError(f"its Method '{method}' is not known.")
    method = "nearest" if method == "nearest" else linear
    if transform not in ("half-pixel", "asymmetric") or rounding not in (
        "round",
        "floor",
        "onnx-10",
    ):
        raise LayerError(f"its modes '{transform}'/'{rounding}' are not known.")

    reference = layer.flag("EnableReferenceInput")
    kwargs: list[tuple[str, object]] = []
    if reference:
        if len(layer.inputs) != 2:
            raise LayerError("it resizes to a reference input that is not connected.")
        spatial = layer.in_types[1].spatial[:nd]
    elif layer.has("Scale"):
        scale = tuple(
            float(v) for v in np.broadcast_to(np.ravel(layer.raw("Scale")), (nd,))
        )
        spatial = tuple(
            math.floor(s * f) for s, f in zip(t.spatial, scale, strict=True)
        )
        kwargs.append(("scale_factor", scale))
    elif layer.has("OutputSize"):
        size = np.ravel(np.asarray(layer.raw("OutputSize"), dtype=np.float64))
        if np.isnan(size).any():  # keep the aspect ratio
            known = [
                (s, o) for s, o in zip(t.spatial, size, strict=True) if not np.isnan(o)
            ]
            factor = known[0][1] / known[0][0]
            kwargs.append(("scale_factor", (factor,) * nd))
            spatial = tuple(math.floor(s * factor) for s in t.spatial)
        else:
            spatial = tuple(int(v) for v in size)
            kwargs.append(("size", spatial))
    else:
        raise LayerError("it has neither Scale, OutputSize nor a reference input.")

    native = {
        ("nearest", "half-pixel", "round"): "nearest-exact",
        ("nearest", "asymmetric", "floor"): "nearest",
        (linear, "half-pixel", "round"): linear,
        (linear, "half-pixel", "floor"): linear,
        (linear, "half-pixel", "onnx-10"): linear,
    }.get((method, transform, rounding))
    out = TensorType(spatial=tuple(spatial), channels=t.channels)
    if native and not reference:
        kwargs.append(("mode", native))
        if native == linear:
            kwargs.append(("align_corners", False))
        call = Call("nn.Upsample", (), tuple(kwargs))
        return Resize(
            **layer.common(), module=call, reference=reference, out_types=(out,)
        )
    kwargs += [("method", method), ("transform", transform), ("rounding", rounding)]
    call = Call("MatlabResize", (), tuple(kwargs))
    return Resize(
        **layer.common(),
        module=call,
        reference=reference,
        helpers=("matlab_resize",),
        out_types=(out,),
    )


@register(
    "nnet.cnn.layer.Resize2DLayer",
    torch="nn.Upsample, or MatlabResize for modes PyTorch lacks",
)
def resize2d(layer: Layer) -> Resize:
    return _resize(layer, 2)


@register(
    "nnet.cnn.layer.Resize3DLayer",
    torch="nn.Upsample, or MatlabResize for modes PyTorch lacks",
)
def resize3d(layer: Layer) -> Resize:
    return _resize(layer, 3)


@dataclass(frozen=True, kw_only=True, eq=False)
class Flatten(Node):
    """MATLAB flattens column-major: h fastest, then w (then d), then c."""

    template: ClassVar[str] = "flatten"
    order: tuple[int, ...] = ()  # permutation before torch.flatten; () = none
    start: int = 1  # first dimension flattened (2 for sequences)


@dataclass(frozen=True, kw_only=True, eq=False)
class Passthrough(Node):
    """A layer that does nothing to this input (flattening a vector sequence)."""

    template: ClassVar[str] = "output"
    elide: ClassVar[bool] = True


@register("nnet.cnn.layer.FlattenLayer", torch="torch.flatten in MATLAB's order")
def flatten(layer: Layer) -> Node:
    t = layer.in_type
    n = len(t.spatial)
    if not n:  # C or C×T already
        return Passthrough(**layer.common(), out_types=(t,))
    size = t.channels * math.prod(t.spatial)
    if t.time:  # per time step: N×T×C×S... → N×T×(C·S...)
        order = (0, 1, 2, *range(n + 2, 2, -1))
        out = TensorType(channels=size, time=True)
        return Flatten(**layer.common(), order=order, start=2, out_types=(out,))
    order = (0, 1, *range(n + 1, 1, -1)) if n > 1 else ()
    return Flatten(
        **layer.common(), order=order, out_types=(TensorType(channels=size),)
    )
