"""Input layers and their normalization, applied inside the generated model.

MATLAB stores the statistics under names that differ from the documented
properties (see MAT_FORMAT.md): ``AverageImage`` for 'zerocenter', ``Mean`` and
``Std`` for 'zscore', ``Min``/``Max``/``TargetMin``/``TargetMax`` for 'rescale'.
They become float32 buffers already shaped to broadcast over the PyTorch
layout.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from codegen.ir import Node, Normalization, TensorType
from codegen.layers import Layer, LayerError, mat_reshape, register
from codegen.matfile import FunctionHandle


@dataclass(frozen=True, kw_only=True, eq=False)
class Input(Node):
    template: ClassVar[str] = "input"
    normalization: Normalization = Normalization.NONE
    stats: dict[str, np.ndarray] = field(default_factory=dict)
    target: tuple[float, float] = (0.0, 1.0)
    # Legacy full-size AverageImage: MATLAB subtracts its per-channel mean
    # from inputs of another size.
    per_channel_fallback: bool = False
    min_length: int = 1  # sequences: MATLAB's MinLength

    def buffers(self) -> dict[str, np.ndarray]:
        return self.stats


@register("nnet.cnn.layer.ImageInputLayer", torch="normalization buffers in forward")
def image_input(layer: Layer) -> Input:
    size = np.asarray(layer.raw("InputSize"), dtype=np.float64).ravel()
    if size.size == 2:
        size = np.append(size, 1)
    if size.size != 3:
        raise LayerError(f"its InputSize {size.tolist()} is not [h w c].")
    h, w, c = (int(v) for v in size)
    return _input(layer, TensorType(spatial=(h, w), channels=c))


@register("nnet.cnn.layer.Image3DInputLayer", torch="normalization buffers in forward")
def image3d_input(layer: Layer) -> Input:
    size = np.asarray(layer.raw("InputSize"), dtype=np.float64).ravel()
    if size.size == 3:
        size = np.append(size, 1)
    if size.size != 4:
        raise LayerError(f"its InputSize {size.tolist()} is not [h w d c].")
    h, w, depth, c = (int(v) for v in size)
    return _input(layer, TensorType(spatial=(h, w, depth), channels=c))


@register("nnet.cnn.layer.InputLayer", torch="a plain forward argument")
def input_layer(layer: Layer) -> Input:
    """dlnetwork's generic input: a size and a format such as 'SSCB' or 'CBT'."""
    fmt = (layer.text("InputFormat", "") or layer.text("Format", "")).upper()
    size = np.asarray(layer.raw("InputSize", np.zeros(0)), dtype=np.float64).ravel()
    if not fmt or len(fmt) != size.size or "C" not in fmt:
        raise LayerError(
            f"its format {fmt!r} and size {size.tolist()} are not understood."
        )
    if any(np.isnan(v) for v, f in zip(size, fmt, strict=True) if f in "SC"):
        raise LayerError("its spatial or channel size is not fixed (NaN).")
    spatial = tuple(int(v) for v, f in zip(size, fmt, strict=True) if f == "S")
    channels = int(size[fmt.index("C")])
    t = TensorType(spatial=spatial, channels=channels, time="T" in fmt)
    if t.format not in ("SSC", "SSSC", "C", "CT", "SC"):
        raise LayerError(f"inputs of format {fmt} are not supported.")
    return Input(**layer.common(), out_types=(t,))


@register(
    "nnet.cnn.layer.SequenceInputLayer",
    torch="N×T×C input (batch first); normalization buffers in forward",
)
def sequence_input(layer: Layer) -> Input:
    size = np.asarray(layer.raw("InputSize"), dtype=np.float64).ravel()
    if np.isnan(size).any():
        raise LayerError("its InputSize is not fixed (NaN).")
    dims = [int(v) for v in size]
    t = TensorType(spatial=tuple(dims[:-1]), channels=dims[-1], time=True)
    node = _input(layer, t)
    min_length = int(layer.number("MinLength", 1))
    node = dataclasses.replace(node, min_length=min_length)
    if min_length > 1:
        note = f"MATLAB required sequences of at least {min_length} time steps here."
        node = dataclasses.replace(node, notes=(note,))
    return node


@register("nnet.cnn.layer.FeatureInputLayer", torch="normalization buffers in forward")
def feature_input(layer: Layer) -> Input:
    c = int(layer.number("InputSize"))
    return _input(layer, TensorType(channels=c))


def _input(layer: Layer, t: TensorType) -> Input:
    if layer.flag("SplitComplexInputs"):
        raise LayerError(
            "it splits complex inputs into channels, which is not supported.",
            hint="Pass real and imaginary parts as channels yourself.",
        )
    kind, stats, target = _normalization(layer, t)
    fallback = (
        kind == "zerocenter"
        and len(t.spatial) == 2
        and stats["mean"].shape[2:] == t.spatial
        and t.spatial != (1, 1)
    )
    return Input(
        **layer.common(),
        normalization=Normalization(kind),
        stats=stats,
        target=target,
        per_channel_fallback=fallback,
        out_types=(t,),
    )


def _normalization(
    layer: Layer, t: TensorType
) -> tuple[str, dict[str, np.ndarray], tuple[float, float]]:
    norm = layer.raw("Normalization")
    if norm is None:
        return "none", {}, (0.0, 1.0)
    if isinstance(norm, FunctionHandle) or (
        isinstance(norm, dict)
        and any(isinstance(v, FunctionHandle) for v in norm.values())
    ):
        raise LayerError(
            "its Normalization is a MATLAB function, which cannot be translated.",
            hint="Set the input layer's Normalization to 'none' in MATLAB and apply "
            "the function to the data yourself, or edit the generated forward.",
        )
    if isinstance(norm, str):
        norm = {"Type": norm}
    if not isinstance(norm, dict):
        raise LayerError(
            f"its Normalization ({type(norm).__name__}) is not understood."
        )
    kind = str(norm.get("Type", "none")).lower()

    def stat(*keys: str) -> np.ndarray | None:
        for key in keys:
            value = norm.get(key)
            if isinstance(value, np.ndarray) and value.size:
                return _broadcastable(value.astype(np.float32), t, key)
        return None

    if kind == "none":
        return "none", {}, (0.0, 1.0)
    if kind == "zerocenter":
        mean = stat("AverageImage", "Mean")
        return (
            ("zerocenter", {"mean": mean}, (0.0, 1.0))
            if mean is not None
            else _untrained()
        )
    if kind == "zscore":
        mean, std = stat("Mean", "AverageImage"), stat("Std", "StandardDeviation")
        if mean is None or std is None:
            return _untrained()
        return "zscore", {"mean": mean, "std": std}, (0.0, 1.0)
    if kind.startswith("rescale"):
        lo, hi = stat("Min"), stat("Max")
        if lo is None or hi is None:
            return _untrained()
        default = (-1.0, 1.0) if kind == "rescale-symmetric" else (0.0, 1.0)
        target = (
            _scalar(norm.get("TargetMin"), default[0]),
            _scalar(norm.get("TargetMax"), default[1]),
        )
        return "rescale", {"min": lo, "max": hi}, target
    raise LayerError(f"its Normalization type '{kind}' is not supported.")


def _untrained() -> tuple[str, dict[str, np.ndarray], tuple[float, float]]:
    # Statistics are computed when MATLAB trains; an untrained network has none.
    return "none", {}, (0.0, 1.0)


def _scalar(value: Any, default: float) -> float:
    if isinstance(value, np.ndarray) and value.size:
        return float(value.ravel()[0])
    return default


def _broadcastable(arr: np.ndarray, t: TensorType, key: str) -> np.ndarray:
    """A MATLAB statistic → an array that broadcasts over the PyTorch layout."""
    if not t.spatial:
        flat = arr.ravel(order="F")
        if flat.size not in (1, t.channels):
            raise LayerError(
                f"its {key} has {flat.size} values for {t.channels} channels."
            )
        return flat.reshape((1, 1, -1) if t.time else (1, -1))
    full = (*t.spatial, t.channels)
    dims = full if arr.ndim <= len(full) else arr.shape
    shape = tuple(arr.shape) + (1,) * (len(full) - arr.ndim)
    if len(shape) != len(full) or any(
        s not in (1, f) for s, f in zip(shape, dims, strict=False)
    ):
        raise LayerError(
            f"its {key} is {'×'.join(map(str, arr.shape))}, which does not fit "
            f"the input size {t.matlab}."
        )
    a = mat_reshape(arr, shape, key)
    n = len(t.spatial)
    out = a.transpose(n, *range(n))[None]
    return out[None] if t.time else out  # N×T×C×S... for image sequences
