"""An independent NumPy evaluator of MATLAB network semantics.

It works in MATLAB's own layouts (H×W×C×N images, C×N features, C×N×T
sequences), reads the MATLAB-format parameters straight from the layer
records (H×W×C×F kernels, [t b l r] padding, column-major flattening) and
computes in float64. It shares no code with the PyTorch path on purpose: a
permutation or padding mistake there cannot be repeated here. The test suite
checks every layer against it, and ``mat2torch verify`` uses it to check a
conversion without MATLAB.

Each value is a ``Value(array, fmt)`` where ``fmt`` is MATLAB's format
without the batch letter's position games: 'SSCB', 'CB', 'CBT', 'SCB'.
"""

from __future__ import annotations

import ast
import itertools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import erf, expit

from codegen.matfile import MatObject


@dataclass
class Value:
    data: np.ndarray
    fmt: str


Fn = Callable[[MatObject, list[Value]], list[Value]]
REFERENCE: dict[str, Fn] = {}


def ref(*classnames: str) -> Callable[[Fn], Fn]:
    def deco(fn: Fn) -> Fn:
        for c in classnames:
            REFERENCE[c] = fn
        return fn

    return deco


# --------------------------------------------------------------------------
# field access, written independently of codegen.layers


def field(layer: MatObject, key: str, default: Any = None) -> Any:
    v = layer.get(key)
    if v is None:
        return default
    if isinstance(v, np.ndarray) and v.size == 0:
        return default
    if isinstance(v, (list, str)) and len(v) == 0:
        return default
    return v


def num(layer: MatObject, key: str, default: float | None = None) -> float:
    v = field(layer, key)
    return default if v is None else float(np.asarray(v, dtype=float).ravel()[0])


def vec(layer: MatObject, key: str, n: int, default: float | None = None) -> list[int]:
    v = field(layer, key)
    if v is None:
        return [int(default)] * n
    a = np.asarray(v, dtype=float).ravel()
    if a.size == 1:
        a = np.repeat(a, n)
    return [int(x) for x in a]


def learn(layer: MatObject, key: str) -> np.ndarray | None:
    v = layer.get(key)
    if isinstance(v, dict):
        v = v.get("Value")
    if v is None or np.size(v) == 0 or (isinstance(v, str) and not v):
        return None
    return np.asarray(v, dtype=np.float64)


def text(layer: MatObject, key: str, default: str) -> str:
    v = field(layer, key)
    return default if v is None else str(v)


def full(arr: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Re-add the trailing singleton dimensions MATLAB drops."""
    return np.reshape(arr, shape, order="F")


# --------------------------------------------------------------------------
# running a network


def run_layers(layers: list[MatObject], x: np.ndarray) -> list[Value]:
    """Run a chain on one input; returns every layer's output in order."""
    value = Value(np.asarray(x, dtype=np.float64), "")
    outs = []
    for layer in layers:
        value = REFERENCE[layer.classname](layer, [value])[0]
        outs.append(value)
    return outs


def run_graph(
    layers: list[MatObject],
    connections: list[tuple[str, str]],
    inputs: dict[str, np.ndarray],
) -> dict[str, list[Value]]:
    """Run a layer graph given MATLAB's Source/Destination connection list.

    Input layers without an entry in ``inputs`` (left out of the network's
    outputs' ancestry) are not run, nor is anything that depends on them.
    """
    names = [str(layer.get("Name")) for layer in layers]
    by_name = dict(zip(names, layers, strict=True))
    sources: dict[str, dict[int, tuple[str, int]]] = {n: {} for n in names}
    out_ports = {
        "out": 0,
        "indices": 1,
        "size": 2,
        "hidden": 1,
        "cell": 2,
        "miniBatchSize": 1,
        "scores": 1,
    }
    in_ports = {
        "in": 0,
        "indices": 1,
        "size": 2,
        "ref": 1,
        "hidden": 1,
        "cell": 2,
        "miniBatchSize": 1,
        "mask": 1,
    }
    for src, dst in connections:
        s_layer, _, s_port = src.partition("/")
        d_layer, _, d_port = dst.partition("/")
        s_idx = out_ports.get(
            s_port, int(s_port[3:]) - 1 if s_port[3:].isdigit() else 0
        )
        d_idx = in_ports.get(d_port, int(d_port[2:]) - 1 if d_port[2:].isdigit() else 0)
        sources[d_layer][d_idx] = (s_layer, s_idx)
    results: dict[str, list[Value]] = {}

    def evaluate(name: str) -> list[Value]:
        if name in results:
            return results[name]
        layer = by_name[name]
        if not sources[name]:
            if name not in inputs:
                raise _NoInput(name)
            args = [Value(np.asarray(inputs[name], dtype=np.float64), "")]
        else:
            args = [
                evaluate(s)[k]
                for s, k in (sources[name][i] for i in sorted(sources[name]))
            ]
        results[name] = REFERENCE[layer.classname](layer, args)
        return results[name]

    for n in names:
        try:
            evaluate(n)
        except _NoInput:
            pass
    return results


class _NoInput(Exception):
    """A source layer that was given no input."""


def matlab_graph(record: Any) -> tuple[list[MatObject], list[tuple[str, str]] | None]:
    """Layers and connections as MATLAB saved them (None for a chain)."""
    from codegen import graph, matconvnet

    branched = graph.is_branched_struct(record)  # Layers + RegLayers
    if matconvnet.kind(record) or branched:  # wire them by the names given
        g = (graph.build if branched else matconvnet.build)(record, "network")
        pairs = [
            (f"{p.layer}/out{p.index + 1}", f"{name}/in{i + 1}")
            for name in g.names
            for i, p in enumerate(g.inputs[name])
        ]
        named = [  # struct-saved detectors leave their output layers unnamed
            MatObject(r.classname, {**r.fields, "Name": n}, r.saveobj)
            for r, n in zip(g.layers, g.names, strict=True)
        ]
        return named, pairs
    if isinstance(record, MatObject) and record.classname.startswith("nnet.cnn.layer."):
        record = [record]
    if isinstance(record, list):
        return record, None
    if record.classname.endswith("ObjectDetector"):
        record = record.fields["Network"]
    if record.classname == "dlnetwork":
        record = record.fields["LayerGraph"]
    layers = record.fields["Layers"]
    layers = layers if isinstance(layers, list) else [layers]
    if record.classname in ("DAGNetwork", "SeriesNetwork"):
        layers = [_predict_mask(layer) for layer in layers]
    if record.classname == "SeriesNetwork":
        return layers, None

    def text(v: Any) -> str:
        while isinstance(v, list):
            v = v[0]
        return str(v)

    table = record.fields["Connections"]
    pairs = zip(table["Source"], table["Destination"], strict=True)
    return layers, [(text(s), text(d)) for s, d in pairs]


def _predict_mask(layer: MatObject) -> MatObject:
    """MATLAB's DAGNetwork predict does not apply a selfAttentionLayer's
    'causal' mask: measured on MATLAB's recorded predictions of a real
    R2023b network (no document states it; see the README's limits)."""
    if layer.classname != "nnet.cnn.layer.SelfAttentionLayer":
        return layer
    if str(layer.get("AttentionMask", "none")).lower() != "causal":
        return layer
    return MatObject(
        layer.classname, {**layer.fields, "AttentionMask": "none"}, layer.saveobj
    )


def to_torch(v: Value) -> np.ndarray:
    """A MATLAB-layout value in the PyTorch layout the generated code uses."""
    a = v.data
    if v.fmt == "SSCB":
        return a.transpose(3, 2, 0, 1)
    if v.fmt == "SSSCB":
        return a.transpose(4, 3, 0, 1, 2)
    if v.fmt == "CB":
        return a.T
    if v.fmt == "CBT":
        return a.transpose(1, 2, 0)
    if v.fmt == "SCB":
        return a.transpose(2, 1, 0)
    if v.fmt == "SSCBT":
        return a.transpose(3, 4, 2, 0, 1)
    if v.fmt == "UUUU":  # attention scores, keys×queries×heads×N
        return a.transpose(3, 2, 1, 0)
    raise ValueError(v.fmt)


def images(x: Value, nd: int = 2) -> np.ndarray:
    """View a value as 4-D SSCB (adds the singleton dims MATLAB drops)."""
    a = x.data
    while a.ndim < nd + 2:
        a = a[..., None]
    return a


# --------------------------------------------------------------------------
# input layers


def _stat(norm: dict, *keys: str) -> np.ndarray | None:
    for k in keys:
        v = norm.get(k)
        if isinstance(v, np.ndarray) and v.size:
            return v.astype(np.float64)
    return None


def _normalize(layer: MatObject, x: np.ndarray, spatial_dims: int) -> np.ndarray:
    norm = field(layer, "Normalization")
    if not isinstance(norm, dict):
        return x
    kind = str(norm.get("Type", "none"))
    if kind == "none":
        return x

    def bc(s: np.ndarray) -> np.ndarray:
        # statistics are h×w×c (or 1×1×c, scalar) images / C×1 vectors
        if spatial_dims == 0:
            return s.reshape(-1, 1) if s.size > 1 else s.reshape(1, 1)
        s = s.reshape(s.shape + (1,) * (spatial_dims + 1 - s.ndim))
        return s[..., None]

    if kind == "zerocenter":
        mean = _stat(norm, "AverageImage", "Mean")
        if mean is None:
            return x
        m = bc(mean)
        if (
            spatial_dims == 2
            and m.shape[0] * m.shape[1] > 1
            and m.shape[:2] != x.shape[:2]
        ):
            m = m.mean(axis=(0, 1), keepdims=True)  # legacy rule for other sizes
        return x - m
    if kind == "zscore":
        return (x - bc(_stat(norm, "Mean"))) / bc(
            _stat(norm, "Std", "StandardDeviation")
        )
    if kind.startswith("rescale"):
        lo, hi = bc(_stat(norm, "Min")), bc(_stat(norm, "Max"))
        tmin = (
            float(np.ravel(norm.get("TargetMin", [[0.0]]))[0])
            if np.size(norm.get("TargetMin", []))
            else 0.0
        )
        tmax = (
            float(np.ravel(norm.get("TargetMax", [[1.0]]))[0])
            if np.size(norm.get("TargetMax", []))
            else 1.0
        )
        return (x - lo) / (hi - lo) * (tmax - tmin) + tmin
    raise ValueError(kind)


@ref("nnet.cnn.layer.ImageInputLayer")
def image_input(layer: MatObject, xs: list[Value]) -> list[Value]:
    x = images(xs[0])
    return [Value(_normalize(layer, x, 2), "SSCB")]


@ref("nnet.cnn.layer.Image3DInputLayer")
def image3d_input(layer: MatObject, xs: list[Value]) -> list[Value]:
    x = images(xs[0], 3)
    return [Value(_normalize(layer, x, 3), "SSSCB")]


@ref("nnet.cnn.layer.InputLayer")
def input_layer(layer: MatObject, xs: list[Value]) -> list[Value]:
    fmt = str(field(layer, "InputFormat", "")).upper()
    return [Value(xs[0].data, fmt)]


@ref("nnet.cnn.layer.FeatureInputLayer")
def feature_input(layer: MatObject, xs: list[Value]) -> list[Value]:
    x = xs[0].data
    return [Value(_normalize(layer, x, 0), "CB")]


# --------------------------------------------------------------------------
# padding and windows (n spatial dims, MATLAB layout S...×C×N)


def _padding(
    layer: MatObject, x: np.ndarray, k: list[int], s: list[int], d: list[int]
) -> list[tuple[int, int]]:
    """(before, after) per spatial dim; 'same' is recomputed from the input size."""
    n = len(k)
    mode = text(layer, "PaddingMode", "manual")
    if mode == "same":
        out = []
        for dim in range(n):
            size = x.shape[dim]
            eff = (k[dim] - 1) * d[dim] + 1
            total = max((math.ceil(size / s[dim]) - 1) * s[dim] + eff - size, 0)
            out.append((total // 2, total - total // 2))
        return out
    p = field(layer, "PaddingSize")
    if p is not None:
        p = np.asarray(p, dtype=float)
        if n == 2:  # [t b l r]
            v = np.broadcast_to(p.ravel(), (4,))
            return [(int(v[0]), int(v[1])), (int(v[2]), int(v[3]))]
        if n == 3:  # [t l f; b r k] (saved as 2×3 or as its 1×6 column-major copy)
            m = p.reshape(-1, order="F").reshape((2, 3), order="F")
            return [(int(m[0, i]), int(m[1, i])) for i in range(3)]
        v = np.broadcast_to(p.ravel(), (2,))
        return [(int(v[0]), int(v[1]))]
    p = field(layer, "Padding")
    if p is not None:
        return [(v, v) for v in vec(layer, "Padding", n)]
    return [(0, 0)] * n


def _pad(x: np.ndarray, pads: list[tuple[int, int]], value: Any) -> np.ndarray:
    width = [*pads] + [(0, 0)] * (x.ndim - len(pads))
    if isinstance(value, str):
        mode = {
            "replicate": "edge",
            "symmetric-exclude-edge": "reflect",
            "symmetric-include-edge": "symmetric",
        }[value]
        return np.pad(x, width, mode=mode)
    return np.pad(x, width, mode="constant", constant_values=value)


def _windows(x: np.ndarray, k: list[int], s: list[int], d: list[int]):
    """Yield (offset, slab) with slab[i, j, ...] = x[i*s + u*d, j*s + v*d, ...]."""
    n = len(k)
    outs = [(x.shape[i] - ((k[i] - 1) * d[i] + 1)) // s[i] + 1 for i in range(n)]
    for offset in itertools.product(*(range(ki) for ki in k)):
        index = tuple(
            slice(u * d[i], u * d[i] + (outs[i] - 1) * s[i] + 1, s[i])
            for i, u in enumerate(offset)
        )
        yield offset, x[index]


def _conv(x: np.ndarray, W: np.ndarray, k, s, d) -> np.ndarray:
    """Cross-correlation of S...×C×N data with an S...×C×F kernel."""
    acc = None
    for offset, slab in _windows(x, k, s, d):
        term = np.tensordot(slab, W[offset], axes=([len(k)], [0]))  # S..×N×F
        acc = term if acc is None else acc + term
    return np.moveaxis(acc, -1, -2)  # S...×F×N


# --------------------------------------------------------------------------
# convolution


def _conv_nd(layer: MatObject, xs: list[Value], nd: int, fmt: str) -> list[Value]:
    x = images(xs[0], nd)
    k = vec(layer, "FilterSize", nd)
    s = vec(layer, "Stride", nd, 1)
    d = vec(layer, "DilationFactor", nd, 1)
    value = field(layer, "PaddingValue", 0.0)
    if not isinstance(value, str):
        value = float(np.ravel(value)[0])
    xp = _pad(x, _padding(layer, x, k, s, d), value)
    nf = np.asarray(field(layer, "NumFilters", []), dtype=float).ravel()
    groups = max(nf.size, 1)
    C = x.shape[nd]
    F = _filters(layer, nf, int(np.prod(k)) * C // groups)
    W = full(learn(layer, "Weights"), (*k, C // groups, F))
    cg, fg = C // groups, F // groups
    parts = []
    for g in range(groups):
        xg = xp[(slice(None),) * nd + (slice(g * cg, (g + 1) * cg),)]
        Wg = W[(slice(None),) * nd + (slice(None), slice(g * fg, (g + 1) * fg))]
        parts.append(_conv(xg, Wg, k, s, d))
    y = np.concatenate(parts, axis=nd)
    b = learn(layer, "Bias")
    if b is not None:
        y = y + b.reshape((1,) * nd + (-1, 1), order="F")
    return [Value(y, fmt)]


def _filters(layer: MatObject, saved: np.ndarray, per_filter: int) -> int:
    """NumFilters (summed over groups), or what the weights hold when the
    property is missing."""
    if np.size(saved):
        return int(np.asarray(saved, dtype=float).sum())
    return int(np.size(learn(layer, "Weights")) // per_filter)


@ref("nnet.cnn.layer.Convolution2DLayer")
def conv2d(layer: MatObject, xs: list[Value]) -> list[Value]:
    return _conv_nd(layer, xs, 2, "SSCB")


@ref("nnet.cnn.layer.Convolution3DLayer")
def conv3d(layer: MatObject, xs: list[Value]) -> list[Value]:
    return _conv_nd(layer, xs, 3, "SSSCB")


@ref("nnet.cnn.layer.GroupedConvolution2DLayer")
def grouped_conv2d(layer: MatObject, xs: list[Value]) -> list[Value]:
    x = images(xs[0])
    k = vec(layer, "FilterSize", 2)
    s = vec(layer, "Stride", 2, 1)
    d = vec(layer, "DilationFactor", 2, 1)
    C = x.shape[2]
    ng = field(layer, "NumGroups")
    G = C if isinstance(ng, str) else int(num(layer, "NumGroups"))
    Fg = int(num(layer, "NumFiltersPerGroup"))
    W = full(learn(layer, "Weights"), (*k, C // G, Fg, G))
    B = learn(layer, "Bias")
    value = field(layer, "PaddingValue", 0.0)
    xp = _pad(
        x,
        _padding(layer, x, k, s, d),
        value if isinstance(value, str) else float(np.ravel(value)[0]),
    )
    cg = C // G
    parts = []
    for g in range(G):  # output channel of group g, filter f: g*Fg + f
        y = _conv(xp[:, :, g * cg : (g + 1) * cg], W[:, :, :, :, g], k, s, d)
        if B is not None:
            y = y + full(B, (Fg, G))[:, g][None, None, :, None]
        parts.append(y)
    return [Value(np.concatenate(parts, axis=2), "SSCB")]


def _transposed_nd(layer: MatObject, xs: list[Value], nd: int, fmt: str) -> list[Value]:
    x = images(xs[0], nd)
    k = vec(layer, "FilterSize", nd)
    s = vec(layer, "Stride", nd, 1)
    sizes, C, N = x.shape[:nd], x.shape[nd], x.shape[nd + 1]
    F = _filters(layer, np.ravel(field(layer, "NumFilters", [])), int(np.prod(k)) * C)
    Wt = full(learn(layer, "Weights"), (*k, F, C))
    full_size = [s[i] * (sizes[i] - 1) + k[i] for i in range(nd)]
    y = np.zeros((*full_size, F, N))
    for offset in itertools.product(*(range(ki) for ki in k)):
        index = tuple(
            slice(u, u + s[i] * (sizes[i] - 1) + 1, s[i]) for i, u in enumerate(offset)
        )
        # y[i*s + u] += sum_c W[u, f, c] x[i, c]
        y[index] += np.moveaxis(np.tensordot(x, Wt[offset], axes=([nd], [1])), -1, nd)
    if text(layer, "CroppingMode", "manual") == "same":
        crops, extra = [], []
        for i in range(nd):
            total = k[i] - s[i]
            crops.append((max(total, 0) // 2, max(total, 0) - max(total, 0) // 2))
            extra.append(max(-total, 0))
    else:
        c = field(layer, "CroppingSize")
        if c is not None and nd == 2:
            t, b_, left, r = (int(v) for v in np.broadcast_to(np.ravel(c), (4,)))
            crops = [(t, b_), (left, r)]
        elif c is not None:
            m = (
                np.asarray(c, dtype=float)
                .reshape(-1, order="F")
                .reshape((2, nd), order="F")
            )
            crops = [(int(m[0, i]), int(m[1, i])) for i in range(nd)]
        else:
            crops = [(v, v) for v in vec(layer, "Cropping", nd, 0)]
        extra = [abs(o) for o in vec(layer, "OutputSizeOffset", nd, 0)]
    y = np.pad(y, [(0, e) for e in extra] + [(0, 0), (0, 0)])
    y = y[tuple(slice(b, y.shape[i] - a) for i, (b, a) in enumerate(crops))]
    b = learn(layer, "Bias")
    if b is not None:
        y = y + b.reshape((1,) * nd + (-1, 1), order="F")
    return [Value(y, fmt)]


@ref("nnet.cnn.layer.TransposedConvolution2DLayer")
def transposed_conv2d(layer: MatObject, xs: list[Value]) -> list[Value]:
    return _transposed_nd(layer, xs, 2, "SSCB")


@ref("nnet.cnn.layer.TransposedConvolution3DLayer")
def transposed_conv3d(layer: MatObject, xs: list[Value]) -> list[Value]:
    return _transposed_nd(layer, xs, 3, "SSSCB")


# --------------------------------------------------------------------------
# fully connected


@ref("nnet.cnn.layer.FullyConnectedLayer")
def fully_connected(layer: MatObject, xs: list[Value]) -> list[Value]:
    x = xs[0]
    b = learn(layer, "Bias")
    if x.fmt == "CBT":  # applied independently at every time step
        W, C = learn(layer, "Weights"), x.data.shape[0]
        W = full(W, (C, W.size // C)).T if W.ndim >= 3 else full(W, (W.size // C, C))
        y = np.einsum("oc,cnt->ont", W, x.data)
        if b is not None:
            y = y + b.reshape(-1)[:, None, None]
        return [Value(y, "CBT")]
    if x.fmt == "SSCB":
        a = images(x)
        H, W_, C, N = a.shape
        flat = a.reshape(H * W_ * C, N, order="F")  # column-major: h, then w, then c
    else:
        flat = x.data
    W = learn(layer, "Weights")
    n_in = flat.shape[0]
    old_size = np.size(field(layer, "InputSize", [])) >= 3
    if W.ndim >= 3 or (old_size and W.shape[-1] != n_in):
        out = W.size // n_in
        Wm = full(W, (n_in, out)).T  # H×W×C×O kernel, column-major over H, W, C
    else:
        out = W.shape[0]
        Wm = full(W, (out, n_in))
    y = Wm @ flat
    if b is not None:
        y = y + b.reshape(-1, 1)
    if x.fmt == "SSCB":
        return [Value(y.reshape(1, 1, out, -1), "SSCB")]  # MATLAB keeps 1×1×O×N
    return [Value(y, "CB")]


# --------------------------------------------------------------------------
# normalization


def _channel_axis(v: Value) -> int:
    return {"SSCB": 2, "CB": 0, "CBT": 0, "SCB": 1, "SSSCB": 3, "SSCBT": 2}[v.fmt]


def _per_channel(v: Value, values: np.ndarray) -> np.ndarray:
    shape = [1] * v.data.ndim
    shape[_channel_axis(v)] = -1
    return values.reshape(shape)


@ref("nnet.cnn.layer.BatchNormalizationLayer")
def batch_norm(layer: MatObject, xs: list[Value]) -> list[Value]:
    x = xs[0]
    eps = num(layer, "Epsilon", 1e-5)
    mean = _per_channel(x, learn(layer, "TrainedMean"))
    var = _per_channel(x, learn(layer, "TrainedVariance"))
    scale = _per_channel(x, learn(layer, "Scale"))
    offset = _per_channel(x, learn(layer, "Offset"))
    return [Value(scale * (x.data - mean) / np.sqrt(var + eps) + offset, x.fmt)]


@ref("nnet.cnn.layer.CrossChannelNormalizationLayer")
def cross_channel_norm(layer: MatObject, xs: list[Value]) -> list[Value]:
    x = images(xs[0])
    w = int(num(layer, "WindowChannelSize"))
    # crossChannelNormalizationLayer's documented defaults
    alpha, beta = num(layer, "Alpha", 1e-4), num(layer, "Beta", 0.75)
    K = num(layer, "K", 2.0)
    C = x.shape[2]
    before, after = (w - 1) // 2, w // 2
    sq = x * x
    ss = np.zeros_like(x)
    for c in range(C):
        lo, hi = max(c - before, 0), min(c + after, C - 1)
        ss[:, :, c] = sq[:, :, lo : hi + 1].sum(axis=2)
    return [Value(x / (K + alpha * ss / w) ** beta, "SSCB")]


# --------------------------------------------------------------------------
# element-wise


def _elementwise(fn: Callable[[MatObject, np.ndarray], np.ndarray]) -> Fn:
    def run(layer: MatObject, xs: list[Value]) -> list[Value]:
        return [Value(fn(layer, xs[0].data), xs[0].fmt)]

    return run


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return expit(x)


REFERENCE.update(
    {
        "nnet.cnn.layer.ReLULayer": _elementwise(lambda L, x: np.maximum(x, 0)),
        "nnet.cnn.layer.LeakyReLULayer": _elementwise(
            lambda L, x: np.where(x > 0, x, num(L, "Scale", 0.01) * x)
        ),
        "nnet.cnn.layer.ClippedReLULayer": _elementwise(
            lambda L, x: np.minimum(np.maximum(x, 0), num(L, "Ceiling"))
        ),
        "nnet.cnn.layer.ELULayer": _elementwise(
            lambda L, x: np.where(
                x >= 0, x, num(L, "Alpha", 1.0) * (np.exp(np.minimum(x, 0)) - 1)
            )
        ),
        "nnet.cnn.layer.TanhLayer": _elementwise(lambda L, x: np.tanh(x)),
        "nnet.cnn.layer.SigmoidLayer": _elementwise(lambda L, x: _sigmoid(x)),
        "nnet.cnn.layer.SwishLayer": _elementwise(lambda L, x: x * _sigmoid(x)),
        "nnet.cnn.layer.GELULayer": _elementwise(
            lambda L, x: (
                0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
                if text(L, "Approximation", "none") == "tanh"
                else 0.5 * x * (1 + erf(x / math.sqrt(2)))
            )
        ),
        "nnet.cnn.layer.DropoutLayer": _elementwise(lambda L, x: x),
    }
)


@ref("nnet.cnn.layer.SoftmaxLayer")
def softmax(layer: MatObject, xs: list[Value]) -> list[Value]:
    x = xs[0]
    a = images(x) if x.fmt == "SSCB" else x.data
    axis = _channel_axis(x)
    e = np.exp(a - a.max(axis=axis, keepdims=True))
    return [Value(e / e.sum(axis=axis, keepdims=True), x.fmt)]


# --------------------------------------------------------------------------
# pooling


def _max_pool(layer: MatObject, xs: list[Value], nd: int, fmt: str) -> list[Value]:
    x = images(xs[0], nd)
    k = vec(layer, "PoolSize", nd)
    s = vec(layer, "Stride", nd, 1)
    xp = _pad(x, _padding(layer, x, k, s, [1] * nd), -np.inf)
    y = where = None
    for offset, slab in _windows(xp, k, s, [1] * nd):
        if y is None:
            y, where = slab.copy(), np.zeros(slab.shape, dtype=np.int64)
        else:  # the first maximum in scan order wins
            better = slab > y
            y = np.where(better, slab, y)
            where = np.where(better, np.ravel_multi_index(offset, k), where)
    outputs = [Value(y, fmt)]
    if field(layer, "HasUnpoolingOutputs") is not None and bool(
        np.ravel(field(layer, "HasUnpoolingOutputs"))[0]
    ):
        # indices: the input position each maximum came from; size: the input size
        outputs += [
            Value(_argmax_positions(where, k, s, x.shape[:nd]), "indices"),
            Value(np.array(x.shape), "size"),
        ]
    return outputs


def _argmax_positions(where: np.ndarray, k, s, sizes) -> np.ndarray:
    nd = len(k)
    offsets = np.unravel_index(where, k)
    grids = np.meshgrid(*(np.arange(where.shape[i]) for i in range(nd)), indexing="ij")
    coords = [
        grids[i].reshape(grids[i].shape + (1,) * (where.ndim - nd)) * s[i] + offsets[i]
        for i in range(nd)
    ]
    return np.ravel_multi_index(
        coords, sizes
    )  # column order irrelevant: used only here


@ref("nnet.cnn.layer.MaxUnpooling2DLayer")
def max_unpool2d(layer: MatObject, xs: list[Value]) -> list[Value]:
    x, idx, size = images(xs[0]), xs[1].data, xs[2].data
    H, W = int(size[0]), int(size[1])
    out = np.zeros((H * W, *x.shape[2:]))
    flat_x = x.reshape(-1, *x.shape[2:])
    flat_i = idx.reshape(-1, *idx.shape[2:])
    for c in range(x.shape[2]):
        for n in range(x.shape[3]):
            out[flat_i[:, c, n], c, n] = flat_x[:, c, n]
    return [Value(out.reshape(H, W, *x.shape[2:]), "SSCB")]


@ref("nnet.cnn.layer.MaxPooling2DLayer")
def max_pool2d(layer: MatObject, xs: list[Value]) -> list[Value]:
    return _max_pool(layer, xs, 2, "SSCB")


@ref("nnet.cnn.layer.MaxPooling3DLayer")
def max_pool3d(layer: MatObject, xs: list[Value]) -> list[Value]:
    return _max_pool(layer, xs, 3, "SSSCB")


def _avg_pool(layer: MatObject, xs: list[Value], nd: int, fmt: str) -> list[Value]:
    x = images(xs[0], nd)
    k = vec(layer, "PoolSize", nd)
    s = vec(layer, "Stride", nd, 1)
    pads = _padding(layer, x, k, s, [1] * nd)
    xp = _pad(x, pads, 0.0)
    ones = _pad(np.ones((*x.shape[:nd], 1, 1)), pads, 0.0)
    total = count = None
    for (_, slab), (_, cnt) in zip(
        _windows(xp, k, s, [1] * nd), _windows(ones, k, s, [1] * nd), strict=True
    ):
        total = slab.copy() if total is None else total + slab
        count = cnt.copy() if count is None else count + cnt
    if field(layer, "PaddingValue") == "mean":
        return [Value(total / count, fmt)]
    return [Value(total / math.prod(k), fmt)]


@ref("nnet.cnn.layer.AveragePooling2DLayer")
def avg_pool2d(layer: MatObject, xs: list[Value]) -> list[Value]:
    return _avg_pool(layer, xs, 2, "SSCB")


@ref("nnet.cnn.layer.AveragePooling3DLayer")
def avg_pool3d(layer: MatObject, xs: list[Value]) -> list[Value]:
    return _avg_pool(layer, xs, 3, "SSSCB")


def _global(fn: Callable, nd: int, fmt: str) -> Fn:
    def run(layer: MatObject, xs: list[Value]) -> list[Value]:
        return [Value(fn(images(xs[0], nd), axis=tuple(range(nd)), keepdims=True), fmt)]

    return run


REFERENCE.update(
    {
        "nnet.cnn.layer.GlobalAveragePooling2DLayer": _global(np.mean, 2, "SSCB"),
        "nnet.cnn.layer.GlobalMaxPooling2DLayer": _global(np.max, 2, "SSCB"),
        "nnet.cnn.layer.GlobalAveragePooling3DLayer": _global(np.mean, 3, "SSSCB"),
        "nnet.cnn.layer.GlobalMaxPooling3DLayer": _global(np.max, 3, "SSSCB"),
    }
)


# --------------------------------------------------------------------------
# combining, cropping, resizing, flattening


@ref("nnet.cnn.layer.AdditionLayer")
def addition(layer: MatObject, xs: list[Value]) -> list[Value]:
    return [Value(sum(x.data for x in xs), xs[0].fmt)]


@ref("nnet.cnn.layer.MultiplicationLayer")
def multiplication(layer: MatObject, xs: list[Value]) -> list[Value]:
    return [Value(math.prod(x.data for x in xs), xs[0].fmt)]


@ref("nnet.cnn.layer.ConcatenationLayer")
def concatenation(layer: MatObject, xs: list[Value]) -> list[Value]:
    dim = int(num(layer, "Dim"))  # a MATLAB dimension of the data as laid out
    return [Value(np.concatenate([x.data for x in xs], axis=dim - 1), xs[0].fmt)]


@ref("nnet.cnn.layer.DepthConcatenationLayer")
def depth_concatenation(layer: MatObject, xs: list[Value]) -> list[Value]:
    axis = _channel_axis(xs[0])
    return [Value(np.concatenate([x.data for x in xs], axis=axis), xs[0].fmt)]


@ref("nnet.cnn.layer.Crop2DLayer")
def crop2d(layer: MatObject, xs: list[Value]) -> list[Value]:
    x, refv = images(xs[0]), images(xs[1])
    X, Y = x.shape[:2], refv.shape[:2]
    if text(layer, "Mode", "centercrop") == "centercrop":
        # 1-based: floor(X/2 + 1) - floor(Y/2 + 1) + 1
        start = [math.floor(X[i] / 2 + 1) - math.floor(Y[i] / 2 + 1) for i in range(2)]
    else:
        col, row = (int(v) for v in np.ravel(field(layer, "Location")))
        start = [row - 1, col - 1]
    return [Value(x[start[0] : start[0] + Y[0], start[1] : start[1] + Y[1]], "SSCB")]


def _resize(layer: MatObject, xs: list[Value], nd: int, fmt: str) -> list[Value]:
    x = images(xs[0], nd)
    sizes = list(x.shape[:nd])
    if field(layer, "EnableReferenceInput") is not None and bool(
        np.ravel(field(layer, "EnableReferenceInput"))[0]
    ):
        out = list(images(xs[1], nd).shape[:nd])
        scale = [o / i for o, i in zip(out, sizes, strict=True)]
    elif field(layer, "Scale") is not None:
        scale = [
            float(v) for v in np.broadcast_to(np.ravel(field(layer, "Scale")), (nd,))
        ]
        out = [math.floor(i * f) for i, f in zip(sizes, scale, strict=True)]
    else:
        o = np.ravel(np.asarray(field(layer, "OutputSize"), dtype=float))
        if np.isnan(o).any():
            f = next(oo / i for oo, i in zip(o, sizes, strict=True) if not np.isnan(oo))
            scale, out = [f] * nd, [math.floor(i * f) for i in sizes]
        else:
            out = [int(v) for v in o]
            scale = [oo / i for oo, i in zip(out, sizes, strict=True)]
    method = text(layer, "Method", "nearest")
    mode = text(layer, "GeometricTransformMode", "half-pixel")
    rounding = text(layer, "NearestRoundingMode", "round")
    for dim in range(nd):
        q = np.arange(1, out[dim] + 1, dtype=float)  # 1-based output positions
        if mode == "half-pixel":
            u = q / scale[dim] + 0.5 * (1 - 1 / scale[dim])
        else:
            u = 1 + (q - 1) / scale[dim]
        u = np.clip(u, 1, sizes[dim])
        if method == "nearest":
            if rounding == "onnx-10":
                u = np.ceil(u) if scale[dim] < 1 else np.fix(u)
            elif rounding == "floor":
                u = np.floor(u)
            else:
                u = np.floor(u + 0.5)  # MATLAB round, for positive values
            x = np.take(x, u.astype(int) - 1, axis=dim)
        else:
            lo = np.floor(u).astype(int)
            hi = np.ceil(u).astype(int)
            w = (u - lo).reshape((-1,) + (1,) * (x.ndim - dim - 1))
            x = (
                np.take(x, lo - 1, axis=dim) * (1 - w)
                + np.take(x, hi - 1, axis=dim) * w
            )
    return [Value(x, fmt)]


@ref("nnet.cnn.layer.Resize2DLayer")
def resize2d(layer: MatObject, xs: list[Value]) -> list[Value]:
    return _resize(layer, xs, 2, "SSCB")


@ref("nnet.cnn.layer.Resize3DLayer")
def resize3d(layer: MatObject, xs: list[Value]) -> list[Value]:
    return _resize(layer, xs, 3, "SSSCB")


@ref("nnet.cnn.layer.FlattenLayer")
def flatten(layer: MatObject, xs: list[Value]) -> list[Value]:
    x = xs[0]
    if x.fmt in ("CB", "CBT"):
        return [x]
    if x.fmt == "SSCBT":  # per time step, column-major
        a = x.data
        return [Value(a.reshape((-1, a.shape[-2], a.shape[-1]), order="F"), "CBT")]
    nd = x.fmt.count("S")
    a = images(x, nd)
    return [Value(a.reshape(-1, a.shape[-1], order="F"), "CB")]  # column-major


@ref("nnet.cnn.layer.YOLOv2TransformLayer")
def yolov2_transform(layer: MatObject, xs: list[Value]) -> list[Value]:
    x = images(xs[0])
    H, W, C, N = x.shape
    A = int(num(layer, "NumAnchorBoxes"))
    r = x.reshape((H * W, A, C // A, N), order="F")
    iou = 1 / (1 + np.exp(-r[:, :, :1]))
    xy = 1 / (1 + np.exp(-r[:, :, 1:3]))
    wh = np.exp(r[:, :, 3:5])
    e = np.exp(r[:, :, 5:] - r[:, :, 5:].max(axis=2, keepdims=True))
    z = np.concatenate([iou, xy, wh, e / e.sum(axis=2, keepdims=True)], axis=2)
    return [Value(z.reshape((H, W, C, N), order="F"), "SSCB")]


_FUNCTIONS: dict[str, Callable[..., np.ndarray]] = {
    "exp": np.exp,
    "log": np.log,
    "sqrt": np.sqrt,
    "abs": np.abs,
    "tanh": np.tanh,
    "sin": np.sin,
    "cos": np.cos,
    "sign": np.sign,
    "erf": erf,
    "sigmoid": expit,
    "relu": lambda v: np.maximum(v, 0),
    "max": np.maximum,
    "min": np.minimum,
    # sum/mean(x, k): over MATLAB dimension k, kept as size 1 (beyond ndims: x)
    "sum": lambda v, k: np.sum(v, axis=int(k) - 1, keepdims=True) if k <= v.ndim else v,
    "mean": lambda v, k: (
        np.mean(v, axis=int(k) - 1, keepdims=True) if k <= v.ndim else v
    ),
}


def _mtimes(a: Any, b: Any) -> np.ndarray:
    """MATLAB's * : element-wise when a side is a scalar, else a matrix product."""
    if np.size(a) == 1 or np.size(b) == 1:
        return np.multiply(a, b)
    if np.ndim(a) != 2 or np.ndim(b) != 2 or np.shape(a)[1] != np.shape(b)[0]:
        raise ValueError(f"mtimes of {np.shape(a)} and {np.shape(b)}")
    return np.asarray(a) @ np.asarray(b)


_OPERATORS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: np.add,
    ast.Sub: np.subtract,
    ast.Mult: np.multiply,  # .*
    ast.Div: np.divide,  # ./ and / by a scalar
    ast.Pow: np.power,  # .^ and ^ with a scalar
    ast.MatMult: _mtimes,  # *
}


def _matlab_expression(
    text_: str, args: list[np.ndarray], captured: dict[str, np.ndarray] | None = None
) -> np.ndarray:
    """Evaluate an anonymous MATLAB function of arrays.

    Element-wise operators and the functions above, MATLAB's ``*`` (a matrix
    product unless a side is scalar), vertical concatenation ``[a; b]`` and
    the variables the function captured. The text comes from a .mat file: it
    is rewritten into Python syntax and walked as a syntax tree that admits
    only numbers, known names, arithmetic and calls of the functions above.
    """
    m = re.fullmatch(r"\s*@\s*\(([^)]*)\)(.*)", text_, re.S)
    if not m:
        raise ValueError(f"not an anonymous function: {text_!r}")
    names = [p.strip() for p in m.group(1).split(",")]
    body = m.group(2).replace(".*", "\0").replace("*", "@").replace("\0", "*")
    body = body.replace("./", "/").replace(".^", "**").replace("^", "**")
    body = re.sub(r"(?<![\w.])(\.\d)", r"0\1", body)
    body = body.replace("[", "_vcat((").replace(";", "),(").replace("]", "))")
    env: dict[str, Any] = {**(captured or {}), **dict(zip(names, args, strict=True))}

    def walk(node: ast.AST) -> Any:
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return float(node.value)
        if isinstance(node, ast.Name) and node.id in env:
            return env[node.id]
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            return _OPERATORS[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            value = walk(node.operand)
            return -value if isinstance(node.op, ast.USub) else value
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and not node.keywords
        ):
            values = [walk(a) for a in node.args]
            if node.func.id == "_vcat":  # MATLAB [a; b]: along the first dimension
                return np.concatenate([np.atleast_2d(v) for v in values], axis=0)
            if node.func.id in _FUNCTIONS:
                return _FUNCTIONS[node.func.id](*values)
        raise ValueError(f"unsupported {ast.dump(node)[:40]} in {text_!r}")

    try:
        tree = ast.parse(body.strip(), mode="eval")
    except SyntaxError:
        raise ValueError(f"not a supported expression: {text_!r}") from None
    return walk(tree.body)


def _captured(layer: MatObject) -> dict[str, np.ndarray]:
    """Numeric variables in the saved workspace of the layer's function handle."""
    found: dict[str, np.ndarray] = {}

    def arrays(value: Any) -> None:
        if isinstance(value, MatObject):
            value = value.fields
        items = value.items() if isinstance(value, dict) else []
        for key, item in items:
            if (
                isinstance(item, np.ndarray)
                and item.dtype.kind in "fiu"
                and key.isidentifier()
            ):
                found[key] = np.asarray(item, dtype=np.float64)
            else:
                arrays(item)
        for item in value if isinstance(value, list) else []:
            arrays(item)

    def workspace(value: Any) -> None:
        if isinstance(value, dict):
            if "workspace" in value:
                arrays(value["workspace"])
                return
            for item in value.values():
                workspace(item)
        elif isinstance(value, list):
            for item in value:
                workspace(item)

    workspace(layer.get("PredictFcn"))
    return found


@ref("nnet.cnn.layer.FunctionLayer")
def function_layer(layer: MatObject, xs: list[Value]) -> list[Value]:
    y = _matlab_expression(
        text(layer, "Description", ""), [x.data for x in xs], _captured(layer)
    )
    return [Value(y, xs[0].fmt)]


# --------------------------------------------------------------------------
# layer, group and instance normalization


def _normalize_over(
    x: Value, axes: tuple[int, ...], eps: float, scale, offset
) -> np.ndarray:
    a = x.data
    mean = a.mean(axis=axes, keepdims=True)
    var = a.var(axis=axes, keepdims=True)
    y = (a - mean) / np.sqrt(var + eps)
    if scale is not None:
        y = _per_channel(x, scale) * y + _per_channel(x, offset)
    return y


@ref("nnet.cnn.layer.LayerNormalizationLayer")
def layer_norm(layer: MatObject, xs: list[Value]) -> list[Value]:
    x = xs[0]
    fmt = x.fmt
    letters = {
        "S": [i for i, c in enumerate(fmt) if c == "S"],
        "C": [fmt.index("C")],
        "T": [i for i, c in enumerate(fmt) if c == "T"],
    }
    dims = text(layer, "OperationDimension", "batch-excluded")
    if dims == "auto":
        dims = "spatial-channel" if fmt.count("S") > 1 else "channel-only"
    axes = {
        "channel-only": letters["C"],
        "spatial-channel": letters["S"] + letters["C"],
        "batch-excluded": letters["S"] + letters["C"] + letters["T"],
    }[dims]
    return [
        Value(
            _normalize_over(
                x,
                tuple(axes),
                num(layer, "Epsilon", 1e-5),
                learn(layer, "Scale"),
                learn(layer, "Offset"),
            ),
            fmt,
        )
    ]


@ref("nnet.cnn.layer.GroupNormalizationLayer")
def group_norm(layer: MatObject, xs: list[Value]) -> list[Value]:
    x = xs[0]
    a = x.data
    c_axis = _channel_axis(x)
    C = a.shape[c_axis]
    ng = field(layer, "NumGroups")
    G = (
        {"all-channels": 1, "channel-wise": C}[ng]
        if isinstance(ng, str)
        else int(num(layer, "NumGroups"))
    )
    eps = num(layer, "Epsilon", 1e-5)
    parts = []
    b_axis = x.fmt.index("B")
    for g in range(G):
        block = np.take(a, range(g * C // G, (g + 1) * C // G), axis=c_axis)
        axes = tuple(i for i in range(a.ndim) if i != b_axis)
        m, v = block.mean(axis=axes, keepdims=True), block.var(axis=axes, keepdims=True)
        parts.append((block - m) / np.sqrt(v + eps))
    y = np.concatenate(parts, axis=c_axis)
    scale, offset = learn(layer, "Scale"), learn(layer, "Offset")
    if scale is not None:
        y = _per_channel(x, scale) * y + _per_channel(x, offset)
    return [Value(y, x.fmt)]


@ref("nnet.cnn.layer.InstanceNormalizationLayer")
def instance_norm(layer: MatObject, xs: list[Value]) -> list[Value]:
    x = xs[0]
    axes = tuple(i for i, c in enumerate(x.fmt) if c in "ST")
    return [
        Value(
            _normalize_over(
                x,
                axes,
                num(layer, "Epsilon", 1e-5),
                learn(layer, "Scale"),
                learn(layer, "Offset"),
            ),
            x.fmt,
        )
    ]


# --------------------------------------------------------------------------
# outputs: identity at inference


@ref(
    "nnet.cnn.layer.ClassificationOutputLayer",
    "nnet.cnn.layer.RegressionOutputLayer",
    "nnet.cnn.layer.PixelClassificationLayer",
    "nnet.cnn.layer.DicePixelClassificationLayer",
    "nnet.cnn.layer.FocalLossLayer",
    "nnet.cnn.layer.YOLOv2OutputLayer",
    "vision.cnn.layer.RPNClassificationLayer",
    "vision.cnn.layer.BoundingBoxRegressionOutputLayer",
)
def output(layer: MatObject, xs: list[Value]) -> list[Value]:
    return [xs[0]]


# --------------------------------------------------------------------------
# sequences (MATLAB layout C×N×T)


@ref("nnet.cnn.layer.SequenceInputLayer")
def sequence_input(layer: MatObject, xs: list[Value]) -> list[Value]:
    x = xs[0].data  # C×N×T
    if np.size(field(layer, "InputSize")) > 1:  # image sequences S...×C×N×T
        return [Value(x, "SSCBT")]
    norm = field(layer, "Normalization")
    if isinstance(norm, dict) and str(norm.get("Type", "none")) != "none":
        c = x.shape[0]
        y = _normalize(layer, x.reshape(c, -1), 0).reshape(
            x.shape
        )  # same stats every step
        return [Value(y, "CBT")]
    return [Value(x, "CBT")]


def _gate(name: str) -> Callable[[np.ndarray], np.ndarray]:
    if name == "hard-sigmoid":
        return lambda v: np.clip(0.2 * v + 0.5, 0, 1)
    return expit


def _state_fn(name: str) -> Callable[[np.ndarray], np.ndarray]:
    return {
        "tanh": np.tanh,
        "softsign": lambda v: v / (1 + np.abs(v)),
        "relu": lambda v: np.maximum(v, 0),
    }[name]


def _stored_state(layer: MatObject, keys: tuple[str, str], size: int) -> np.ndarray:
    for key in keys:
        v = learn(layer, key)
        if v is not None:
            return v.reshape(-1)
    return np.zeros(size)


def _lstm_pass(x, W, R, b, h, c, reverse, gate, state):
    H = R.shape[1]
    steps = range(x.shape[2] - 1, -1, -1) if reverse else range(x.shape[2])
    out = np.zeros((H, x.shape[1], x.shape[2]))
    for t in steps:
        z = W @ x[:, :, t] + R @ h + b[:, None]
        i, f, g, o = (
            gate(z[:H]),
            gate(z[H : 2 * H]),
            state(z[2 * H : 3 * H]),
            gate(z[3 * H :]),
        )
        c = f * c + i * g
        h = o * state(c)
        out[:, :, t] = h
    return out, h, c


def _gru_pass(x, W, R, b, h, reverse, gate, state, mode):
    H = R.shape[1]
    steps = range(x.shape[2] - 1, -1, -1) if reverse else range(x.shape[2])
    out = np.zeros((H, x.shape[1], x.shape[2]))
    b_in, b_rec = b[: 3 * H], (b[3 * H :] if b.size == 6 * H else np.zeros(3 * H))
    for t in steps:
        wx = W @ x[:, :, t] + b_in[:, None]
        rh = R @ h
        r = gate(wx[:H] + rh[:H] + b_rec[:H, None])
        z = gate(wx[H : 2 * H] + rh[H : 2 * H] + b_rec[H : 2 * H, None])
        if mode == "before-multiplication":
            cand = state(wx[2 * H :] + R[2 * H :] @ (r * h))
        else:  # after-multiplication (+ recurrent bias when saved)
            cand = state(wx[2 * H :] + r * (rh[2 * H :] + b_rec[2 * H :, None]))
        h = (1 - z) * cand + z * h
        out[:, :, t] = h
    return out, h


def _recurrent(
    layer: MatObject, xs: list[Value], cell: bool, dirs: int, projected: bool = False
) -> list[Value]:
    x = xs[0].data
    _, N, _ = x.shape
    H = int(num(layer, "NumHiddenUnits"))
    gates = 4 if cell else 3
    W, R, b = (
        learn(layer, "InputWeights"),
        learn(layer, "RecurrentWeights"),
        learn(layer, "Bias").reshape(-1),
    )
    if projected:  # act on the projected input / hidden state, as MATLAB defines it
        P_in, P_out = learn(layer, "InputProjector"), learn(layer, "OutputProjector")
        W, R = W @ P_in.T, R @ P_out.T
    gate = _gate(text(layer, "GateActivationFunction", "sigmoid"))
    state = _state_fn(text(layer, "StateActivationFunction", "tanh"))
    has_inputs = field(layer, "HasStateInputs") is not None and bool(
        np.ravel(field(layer, "HasStateInputs"))[0]
    )
    h0 = (
        xs[1].data
        if has_inputs
        else np.repeat(
            _stored_state(layer, ("HiddenState", "InitialHiddenState"), dirs * H)[
                :, None
            ],
            N,
            1,
        )
    )
    c0 = None
    if cell:
        c0 = (
            xs[2].data
            if has_inputs
            else np.repeat(
                _stored_state(layer, ("CellState", "InitialCellState"), dirs * H)[
                    :, None
                ],
                N,
                1,
            )
        )
    outs, finals_h, finals_c = [], [], []
    for d in range(dirs):
        rows = slice(d * gates * H, (d + 1) * gates * H)
        hs = slice(d * H, (d + 1) * H)
        bd = b[rows] if b.size == dirs * gates * H else b  # GRU 6H: one direction
        if cell:
            o, h, c = _lstm_pass(
                x, W[rows], R[rows], bd, h0[hs], c0[hs], d == 1, gate, state
            )
            finals_c.append(c)
        else:
            mode = text(layer, "ResetGateMode", "after-multiplication")
            o, h = _gru_pass(x, W[rows], R[rows], bd, h0[hs], d == 1, gate, state, mode)
        outs.append(o)
        finals_h.append(h)
    seq = np.concatenate(outs, axis=0)
    mode = text(layer, "OutputMode", "")
    last = (
        mode == "last"
        if mode
        else not bool(np.ravel(field(layer, "ReturnSequence", True))[0])
    )
    # 'last': the forward pass's last step and the backward pass's final state
    y = Value(np.concatenate(finals_h, axis=0), "CB") if last else Value(seq, "CBT")
    result = [y]
    if field(layer, "HasStateOutputs") is not None and bool(
        np.ravel(field(layer, "HasStateOutputs"))[0]
    ):
        result.append(Value(np.concatenate(finals_h, axis=0), "CB"))
        if cell:
            result.append(Value(np.concatenate(finals_c, axis=0), "CB"))
    return result


REFERENCE.update(
    {
        "nnet.cnn.layer.LSTMLayer": lambda L, xs: _recurrent(L, xs, True, 1),
        "nnet.cnn.layer.BiLSTMLayer": lambda L, xs: _recurrent(L, xs, True, 2),
        "nnet.cnn.layer.GRULayer": lambda L, xs: _recurrent(L, xs, False, 1),
        "nnet.cnn.layer.BiGRULayer": lambda L, xs: _recurrent(L, xs, False, 2),
        "nnet.cnn.layer.LSTMProjectedLayer": lambda L, xs: _recurrent(
            L, xs, True, 1, True
        ),
        "nnet.cnn.layer.GRUProjectedLayer": lambda L, xs: _recurrent(
            L, xs, False, 1, True
        ),
    }
)


def _time_padding(layer: MatObject, T: int, k: int, s: int, d: int) -> tuple[int, int]:
    mode = text(layer, "PaddingMode", "manual")
    if mode == "causal":
        return (k - 1) * d, 0
    if mode == "same":
        total = max((math.ceil(T / s) - 1) * s + (k - 1) * d + 1 - T, 0)
        return total // 2, total - total // 2
    p = field(layer, "PaddingSize")
    if p is None:
        return 0, 0
    p = np.broadcast_to(np.ravel(p), (2,))
    return int(p[0]), int(p[1])


def _over_time(x: np.ndarray, k: int, s: int, d: int, pads: tuple[int, int], fill: Any):
    """Yield (offset, slab) with slab[:, :, t] = xpad[:, :, t*s + offset*d];
    ``fill`` is a number or one of MATLAB's PaddingValue names."""
    xp = np.moveaxis(_pad(np.moveaxis(x, 2, 0), [pads], fill), 0, 2)
    T_out = (xp.shape[2] - ((k - 1) * d + 1)) // s + 1
    for u in range(k):
        yield u, xp[:, :, u * d : u * d + (T_out - 1) * s + 1 : s]


@ref("nnet.cnn.layer.Convolution1DLayer")
def conv1d(layer: MatObject, xs: list[Value]) -> list[Value]:
    x = xs[0]
    if x.fmt != "CBT":
        raise NotImplementedError(x.fmt)
    a = x.data
    k = int(num(layer, "FilterSize"))
    s, d = int(num(layer, "Stride", 1)), int(num(layer, "DilationFactor", 1))
    C = a.shape[0]
    F = _filters(layer, np.ravel(field(layer, "NumFilters", [])), k * C)
    W = full(learn(layer, "Weights"), (k, C, F))
    fill = field(layer, "PaddingValue", 0.0)
    if isinstance(fill, list) and len(fill) == 1:
        fill = fill[0]
    if not isinstance(fill, str):
        fill = float(np.ravel(fill)[0])
    y = None
    for u, slab in _over_time(
        a, k, s, d, _time_padding(layer, a.shape[2], k, s, d), fill
    ):
        term = np.einsum("cnt,cf->fnt", slab, W[u])
        y = term if y is None else y + term
    b = learn(layer, "Bias")
    if b is not None:
        y = y + b.reshape(-1)[:, None, None]
    return [Value(y, "CBT")]


def _pool1d(layer: MatObject, xs: list[Value], kind: str) -> list[Value]:
    a = xs[0].data
    k = int(num(layer, "PoolSize"))
    s = int(num(layer, "Stride", 1))
    pads = _time_padding(layer, a.shape[2], k, s, 1)
    if kind == "max":
        y = None
        for _, slab in _over_time(a, k, s, 1, pads, -np.inf):
            y = slab.copy() if y is None else np.maximum(y, slab)
        return [Value(y, "CBT")]
    total = sum(slab for _, slab in _over_time(a, k, s, 1, pads, 0.0))
    if field(layer, "PaddingValue") == "mean":
        ones = np.ones((1, 1, a.shape[2]))
        count = sum(slab for _, slab in _over_time(ones, k, s, 1, pads, 0.0))
        return [Value(total / count, "CBT")]
    return [Value(total / k, "CBT")]


REFERENCE.update(
    {
        "nnet.cnn.layer.MaxPooling1DLayer": lambda L, xs: _pool1d(L, xs, "max"),
        "nnet.cnn.layer.AveragePooling1DLayer": lambda L, xs: _pool1d(L, xs, "avg"),
        "nnet.cnn.layer.GlobalAveragePooling1DLayer": lambda L, xs: [
            Value(xs[0].data.mean(axis=2), "CB")
        ],
        "nnet.cnn.layer.GlobalMaxPooling1DLayer": lambda L, xs: [
            Value(xs[0].data.max(axis=2), "CB")
        ],
    }
)


@ref("nnet.cnn.layer.Indexing1DLayer")
def indexing1d(layer: MatObject, xs: list[Value]) -> list[Value]:
    x = xs[0]
    position = -1 if text(layer, "Index", "first") == "last" else 0
    if x.fmt == "CBT":
        return [Value(x.data[:, :, position], "CB")]
    return [Value(x.data[position], "CB")]  # SCB: along S


@ref("nnet.cnn.layer.PositionEmbeddingLayer")
def position_embedding(layer: MatObject, xs: list[Value]) -> list[Value]:
    x = xs[0]
    W = learn(layer, "Weights")  # OutputSize × MaxPosition: column p embeds position p
    if x.fmt == "CBT":
        T, N = x.data.shape[2], x.data.shape[1]
        return [Value(np.repeat(W[:, None, :T], N, axis=1), "CBT")]
    L, N = x.data.shape[0], x.data.shape[2]
    return [Value(np.repeat(W[:, :L].T[:, :, None], N, axis=2), "SCB")]


@ref("nnet.cnn.layer.WordEmbeddingLayer")
def word_embedding(layer: MatObject, xs: list[Value]) -> list[Value]:
    idx = xs[0].data[0].astype(int)  # N×T, 1-based
    W = learn(layer, "Weights")  # Dimension × (NumWords + 1)
    V = int(num(layer, "NumWords"))
    idx = np.where((idx < 1) | (idx > V), V + 1, idx)
    return [Value(np.moveaxis(W[:, idx - 1], 0, 0), "CBT")]


@ref("nnet.cnn.layer.EmbeddingConcatenationLayer")
def embedding_concatenation(layer: MatObject, xs: list[Value]) -> list[Value]:
    x = xs[0].data
    w = learn(layer, "Weights").reshape(-1)
    first = np.repeat(w[:, None, None], x.shape[1], axis=1)
    return [Value(np.concatenate([first, x], axis=2), "CBT")]


@ref("nnet.cnn.layer.SequenceFoldingLayer")
def sequence_folding(layer: MatObject, xs: list[Value]) -> list[Value]:
    a = xs[0].data  # S...×C×N×T → S...×C×(N·T), observations fastest
    folded = a.reshape((*a.shape[:-2], a.shape[-2] * a.shape[-1]), order="F")
    return [Value(folded, "SSCB"), Value(np.array(a.shape[-2]), "size")]


@ref("nnet.cnn.layer.SequenceUnfoldingLayer")
def sequence_unfolding(layer: MatObject, xs: list[Value]) -> list[Value]:
    a, n = xs[0].data, int(xs[1].data)
    if xs[0].fmt == "SSCB":
        a = images(xs[0])
        return [Value(a.reshape((*a.shape[:-1], n, -1), order="F"), "SSCBT")]
    return [Value(a.reshape((a.shape[0], n, -1), order="F"), "CBT")]


@ref("nnet.cnn.layer.SelfAttentionLayer")
def self_attention(layer: MatObject, xs: list[Value]) -> list[Value]:
    """Outputs C×N×T; with HasScoresOutput also the weights, keys×queries×heads×N."""
    x = xs[0].data  # C×N×T
    heads = int(num(layer, "NumHeads"))
    Wq, Wk, Wv, Wo = (
        learn(layer, k)
        for k in ("QueryWeights", "KeyWeights", "ValueWeights", "OutputWeights")
    )
    bq, bk, bv, bo = (
        learn(layer, k).reshape(-1, 1)
        for k in ("QueryBias", "KeyBias", "ValueBias", "OutputBias")
    )
    dk, dv = Wq.shape[0] // heads, Wv.shape[0] // heads
    mask = field(layer, "AttentionMask", "none")
    T = x.shape[2]
    out = []
    weights = np.zeros((T, T, heads, x.shape[1]))
    for n in range(x.shape[1]):
        X = x[:, n, :]
        Q, K, V = Wq @ X + bq, Wk @ X + bk, Wv @ X + bv
        parts = []
        for h in range(heads):
            scores = (
                K[h * dk : (h + 1) * dk].T @ Q[h * dk : (h + 1) * dk] / math.sqrt(dk)
            )  # keys × queries
            if isinstance(mask, str) and mask == "causal":
                scores = np.where(
                    np.arange(T)[:, None] > np.arange(T)[None, :], -np.inf, scores
                )
            elif not isinstance(mask, str):
                scores = np.where(np.asarray(mask)[:T, :T] == 0, -np.inf, scores)
            if len(xs) > 1:  # padding mask: keys where it is 0 are not attended to
                padded = xs[1].data[0, n, :] == 0
                scores = np.where(padded[:, None], -np.inf, scores)
            e = np.exp(scores - scores.max(axis=0, keepdims=True))
            weights[:, :, h, n] = e / e.sum(axis=0, keepdims=True)
            parts.append(V[h * dv : (h + 1) * dv] @ weights[:, :, h, n])
        out.append(Wo @ np.concatenate(parts, axis=0) + bo)
    values = [Value(np.stack(out, axis=1), "CBT")]
    if bool(np.asarray(field(layer, "HasScoresOutput", False)).ravel()[0]):
        values.append(Value(weights, "UUUU"))
    return values


# --------------------------------------------------------------------------
# MatConvNet (SimpleNN types and DagNN blocks)
#
# Written from MatConvNet's own documentation and sources (github.com/vlfeat/
# matconvnet, matlab/vl_nn*.m, matlab/simplenn/vl_simplenn.m, matlab/+dagnn,
# matlab/src/bits/impl/*_cpu.cpp), in MatConvNet's H×W×C×N layout, without
# the toolbox functions above. Records are those of codegen.matconvnet:
# MatConvNet's field names, parameters under filters/biases/multipliers/
# moments/scale. Every function is the forward pass of vl_simplenn(...,
# 'mode', 'test') / DagNN eval in test mode.


def _mcn_vector(layer: MatObject, key: str, n: int, default: float) -> list[int]:
    """A scalar (all sides) or a full vector: pad/crop [t b l r], stride [y x]."""
    v = field(layer, key)
    a = np.asarray(default if v is None else v, dtype=float).ravel()
    return [int(x) for x in (np.repeat(a, n) if a.size == 1 else a)]


def _mcn_4d(a: np.ndarray) -> np.ndarray:
    """MATLAB drops trailing singleton dimensions; put them back (H×W×C×N)."""
    return a.reshape(a.shape + (1,) * (4 - a.ndim))


@ref("matconvnet.input")
def mcn_input(layer: MatObject, xs: list[Value]) -> list[Value]:
    """The user's preprocessing: bsxfun(@minus, x, net.meta.normalization.averageImage)."""
    x = images(xs[0])
    avg = field(layer, "averageImage")
    if avg is not None:
        a = np.asarray(avg, dtype=float)
        if a.ndim <= 2 and 1 in a.shape and a.size == x.shape[2]:
            a = a.reshape(1, 1, -1)  # a per-channel vector
        x = x - _mcn_4d(a)
    return [Value(x, "SSCB")]


@ref("matconvnet.conv", "dagnn.Conv")
def mcn_conv(layer: MatObject, xs: list[Value]) -> list[Value]:
    """vl_nnconv: F is H×W×FC×K, cross-correlation (no flip); FC divides C into
    G = C/FC groups of consecutive channels, filters split in G consecutive
    groups; Pad [t b l r] of zeros; YH = floor((H+t+b-(FH-1)·DY-1)/SY)+1."""
    x = images(xs[0])
    W = _mcn_4d(learn(layer, "filters"))
    kh, kw, fc, K = W.shape
    H, Wd, C, N = x.shape
    G = C // fc
    t, b, left, r = _mcn_vector(layer, "pad", 4, 0)
    sy, sx = _mcn_vector(layer, "stride", 2, 1)
    dy, dx = _mcn_vector(layer, "dilate", 2, 1)
    xp = np.pad(x, ((t, b), (left, r), (0, 0), (0, 0)))
    Ho = (H + t + b - (kh - 1) * dy - 1) // sy + 1
    Wo = (Wd + left + r - (kw - 1) * dx - 1) // sx + 1
    y = np.zeros((Ho, Wo, K, N))
    Kg = K // G
    for g in range(G):
        for u in range(kh):
            for v in range(kw):
                slab = xp[
                    u * dy : u * dy + (Ho - 1) * sy + 1 : sy,
                    v * dx : v * dx + (Wo - 1) * sx + 1 : sx,
                    g * fc : (g + 1) * fc,
                ]
                part = np.tensordot(slab, W[u, v, :, g * Kg : (g + 1) * Kg], (2, 0))
                y[:, :, g * Kg : (g + 1) * Kg] += part.transpose(0, 1, 3, 2)
    bias = learn(layer, "biases")
    if bias is not None:
        y = y + bias.reshape(1, 1, K, 1)
    return [Value(y, "SSCB")]


@ref("matconvnet.convt", "dagnn.ConvTranspose")
def mcn_convt(layer: MatObject, xs: list[Value]) -> list[Value]:
    """vl_nnconvt: the transpose of vl_nnconv. F is H×W×K×D (filter k is
    F(:,:,k,:)); input pixel (i,j) adds x·F into output (UP·i+u, UP·j+v);
    then Crop [t b l r]: YH = UPH·(XH−1) + FH − t − b. NumGroups G: the D
    input channels and the filters' depth split in G consecutive groups, each
    making K outputs (K·G in all)."""
    x = images(xs[0])
    W = _mcn_4d(learn(layer, "filters"))
    kh, kw, K, D = W.shape
    H, Wd, _, N = x.shape
    G = int(num(layer, "numGroups", 1))
    uy, ux = _mcn_vector(layer, "upsample", 2, 1)
    t, b, left, r = _mcn_vector(layer, "crop", 4, 0)
    full = np.zeros(((H - 1) * uy + kh, (Wd - 1) * ux + kw, K * G, N))
    dg = D // G
    for g in range(G):
        xg = x[:, :, g * dg : (g + 1) * dg]
        for u in range(kh):
            for v in range(kw):
                part = np.tensordot(xg, W[u, v, :, g * dg : (g + 1) * dg], (2, 1))
                full[
                    u : u + (H - 1) * uy + 1 : uy,
                    v : v + (Wd - 1) * ux + 1 : ux,
                    g * K : (g + 1) * K,
                ] += part.transpose(0, 1, 3, 2)
    y = full[t : full.shape[0] - b, left : full.shape[1] - r]
    bias = learn(layer, "biases")
    if bias is not None:
        y = y + bias.reshape(1, 1, K * G, 1)
    return [Value(y, "SSCB")]


@ref("matconvnet.pool", "dagnn.Pooling")
def mcn_pool(layer: MatObject, xs: list[Value]) -> list[Value]:
    """vl_nnpool (pooling_cpu.cpp): each window is clipped to the image, so
    padding never enters a max, and an average divides by the number of real
    pixels in the clipped window; YH = floor((H+t+b-POOLY)/SY)+1."""
    x = images(xs[0])
    H, Wd = x.shape[:2]
    py, px = _mcn_vector(layer, "pool", 2, 1)
    sy, sx = _mcn_vector(layer, "stride", 2, 1)
    t, b, left, r = _mcn_vector(layer, "pad", 4, 0)
    method = text(layer, "method", "max")
    Ho, Wo = (H + t + b - py) // sy + 1, (Wd + left + r - px) // sx + 1
    y = np.zeros((Ho, Wo, *x.shape[2:]))
    for i in range(Ho):
        y1 = i * sy - t
        y2, y1 = min(y1 + py, H), max(y1, 0)
        for j in range(Wo):
            x1 = j * sx - left
            x2, x1 = min(x1 + px, Wd), max(x1, 0)
            window = x[y1:y2, x1:x2]
            if method == "max":
                y[i, j] = window.max(axis=(0, 1))
            else:
                y[i, j] = window.sum(axis=(0, 1)) / ((y2 - y1) * (x2 - x1))
    return [Value(y, "SSCB")]


@ref("matconvnet.relu", "dagnn.ReLU")
def mcn_relu(layer: MatObject, xs: list[Value]) -> list[Value]:
    """vl_nnrelu: y = max(x, 0) + leak·min(x, 0)."""
    x = xs[0].data
    return [
        Value(np.maximum(x, 0) + num(layer, "leak", 0.0) * np.minimum(x, 0), "SSCB")
    ]


@ref("matconvnet.sigmoid", "dagnn.Sigmoid")
def mcn_sigmoid(layer: MatObject, xs: list[Value]) -> list[Value]:
    """vl_nnsigmoid: 1 / (1 + exp(-x))."""
    return [Value(1.0 / (1.0 + np.exp(-xs[0].data)), "SSCB")]


@ref("matconvnet.softmax", "dagnn.SoftMax")
def mcn_softmax(layer: MatObject, xs: list[Value]) -> list[Value]:
    """vl_nnsoftmax: over the third (feature channel) dimension at each pixel."""
    x = images(xs[0])
    e = np.exp(x - x.max(axis=2, keepdims=True))
    return [Value(e / e.sum(axis=2, keepdims=True), "SSCB")]


@ref("matconvnet.lrn", "matconvnet.normalize", "dagnn.LRN")
def mcn_lrn(layer: MatObject, xs: list[Value]) -> list[Value]:
    """vl_nnnormalize, PARAM = [N KAPPA ALPHA BETA]:
    y = x / (KAPPA + ALPHA·sum_{q in Q(k)} x_q²)^BETA with
    Q(k) = [max(1, k-floor((N-1)/2)), min(D, k+ceil((N-1)/2))]; ALPHA is not
    divided by N (Caffe's alpha is N·ALPHA)."""
    x = images(xs[0])
    n, kappa, alpha, beta = np.asarray(field(layer, "param"), dtype=float).ravel()
    D = x.shape[2]
    y = np.empty_like(x)
    for k in range(D):
        lo = max(0, k - math.floor((n - 1) / 2))
        hi = min(D - 1, k + math.ceil((n - 1) / 2))
        ss = (x[:, :, lo : hi + 1] ** 2).sum(axis=2)
        y[:, :, k] = x[:, :, k] / (kappa + alpha * ss) ** beta
    return [Value(y, "SSCB")]


@ref("matconvnet.bnorm", "dagnn.BatchNorm")
def mcn_bnorm(layer: MatObject, xs: list[Value]) -> list[Value]:
    """vl_nnbnorm with 'moments' (test mode): MOMENTS = [mu sigma] (C×2) with
    sigma = sqrt(var + EPSILON) computed in training (bnorm_cpu.cpp,
    compute_moments); forward_given_moments uses y = g·(x − mu)/sigma + b
    and does not add EPSILON again."""
    x = images(xs[0])
    C = x.shape[2]
    m = learn(layer, "moments").reshape(C, 2, order="F")
    g = learn(layer, "multipliers").reshape(1, 1, C, 1)
    b = learn(layer, "biases").reshape(1, 1, C, 1)
    mu, sigma = m[:, 0].reshape(1, 1, C, 1), m[:, 1].reshape(1, 1, C, 1)
    return [Value(g * (x - mu) / sigma + b, "SSCB")]


@ref("matconvnet.dropout", "dagnn.DropOut")
def mcn_dropout(layer: MatObject, xs: list[Value]) -> list[Value]:
    """vl_simplenn test mode: res(i+1).x = res(i).x (DagNN: DropOut in 'test')."""
    return [xs[0]]


@ref(
    "matconvnet.softmaxloss",
    "matconvnet.loss",
    "matconvnet.pdist",
    "dagnn.Loss",
    "dagnn.PDist",
    "dagnn.EuclideanLoss",
)
def mcn_loss(layer: MatObject, xs: list[Value]) -> list[Value]:
    """Training objectives: left out, the prediction passes through."""
    return [xs[0]]


@ref("dagnn.Sum")
def mcn_sum(layer: MatObject, xs: list[Value]) -> list[Value]:
    """dagnn.Sum: the sum of all its inputs (numInputs is transient: the arity
    is the length of the layer's inputs)."""
    total = images(xs[0]).copy()
    for x in xs[1:]:
        total = total + images(x)
    return [Value(total, "SSCB")]


@ref("dagnn.Concat")
def mcn_concat(layer: MatObject, xs: list[Value]) -> list[Value]:
    """dagnn.Concat: vl_nnconcat(inputs, dim), dim 3 (channels) by default."""
    dim = int(num(layer, "dim", 3))
    return [Value(np.concatenate([images(x) for x in xs], axis=dim - 1), "SSCB")]


@ref("dagnn.Crop")
def mcn_crop(layer: MatObject, xs: list[Value]) -> list[Value]:
    """dagnn.Crop.getAdaptedCrops: cut inputs{1} to inputs{2}'s H×W; the top
    (left) crop is min(crop(1), H1−H2), the rest comes off the bottom (right)."""
    x, refv = images(xs[0]), images(xs[1])
    cy, cx = _mcn_vector(layer, "crop", 2, 0)
    dv, du = x.shape[0] - refv.shape[0], x.shape[1] - refv.shape[1]
    top = dv - max(0, dv - cy)
    left = du - max(0, du - cx)
    return [Value(x[top : top + refv.shape[0], left : left + refv.shape[1]], "SSCB")]


@ref("dagnn.Scale")
def mcn_scale(layer: MatObject, xs: list[Value]) -> list[Value]:
    """dagnn.Scale: bsxfun(@times, x, scale), then bsxfun(@plus, ., bias) with
    the parameters in their saved MATLAB shapes."""
    x = images(xs[0])
    y = x * _mcn_4d(learn(layer, "scale"))
    bias = learn(layer, "biases")
    has_bias = field(layer, "hasBias")
    if bias is not None and (has_bias is None or bool(np.ravel(has_bias)[0])):
        y = y + _mcn_4d(bias)
    return [Value(y, "SSCB")]


# Training losses of MATLAB's output layers, with their gradient w.r.t. the
# layer's input (the network output). Arrays in MATLAB layout; targets as
# MATLAB gives them: one-hot along C (all zeros: an undefined label), or
# responses shaped like the output.


def _batch_size(y: np.ndarray, fmt: str) -> int:
    return int(y.shape[fmt.index("B")]) if fmt.index("B") < y.ndim else 1


def crossentropyex(
    y: np.ndarray, t: np.ndarray, fmt: str, weights: np.ndarray | None = None
) -> tuple[float, np.ndarray]:
    """classificationLayer / pixelClassificationLayer: (loss, dloss/dy).

    loss = -(1/N) sum_n sum_j w_j t_nj ln y_nj, summed over every other
    position (pixels, time steps). The N-only normaliser for pixels and
    time steps is MATLAB's classification formula applied per position;
    the layer pages were not found to state it (README: unconfirmed).
    """
    y = np.asarray(y, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    shape = [1] * y.ndim
    c = fmt.index("C")
    shape[c] = y.shape[c]
    w = np.ones(shape) if weights is None else np.reshape(weights, shape)
    n = _batch_size(y, fmt)
    loss = -float(np.sum(w * t * np.log(y))) / n
    return loss, -(w * t) / (y * n)


def half_mse(y: np.ndarray, t: np.ndarray, fmt: str) -> tuple[float, np.ndarray]:
    """regressionLayer: (loss, dloss/dy).

    Image, feature and sequence-to-one: 0.5 * sum of squared errors over the
    responses (and pixels) of an observation, mean over the N observations;
    sequence-to-sequence ('T' in fmt) also divided by the sequence length S.
    """
    y = np.asarray(y, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    scale = float(_batch_size(y, fmt))
    if "T" in fmt:
        scale *= y.shape[fmt.index("T")]
    return 0.5 * float(np.sum((y - t) ** 2)) / scale, (y - t) / scale


def softmax_backward(y: np.ndarray, grad_y: np.ndarray, axis: int) -> np.ndarray:
    """dloss/dz for y = softmax(z) along ``axis``, given dloss/dy."""
    return y * (grad_y - np.sum(grad_y * y, axis=axis, keepdims=True))


def sgd_step(
    w: np.ndarray,
    grad: np.ndarray,
    lr: float,
    l2: float,
    lr_factor: float,
    l2_factor: float,
) -> np.ndarray:
    """First SGDM step of trainingOptions (zero velocity), per learnable:
    w - lr*LearnRateFactor*(grad + L2Regularization*L2Factor*w)."""
    return w - lr * lr_factor * (grad + l2 * l2_factor * w)
