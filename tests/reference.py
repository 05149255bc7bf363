"""An independent NumPy evaluator of MATLAB network semantics.

It works in MATLAB's own layouts (H×W×C×N images, C×N features, C×N×T
sequences), reads the MATLAB-format parameters straight from the layer
records (H×W×C×F kernels, [t b l r] padding, column-major flattening) and
computes in float64. It shares no code with the PyTorch path on purpose: a
permutation or padding mistake there cannot be repeated here.

Each value is a ``Value(array, fmt)`` where ``fmt`` is MATLAB's format
without the batch letter's position games: 'SSCB', 'CB', 'CBT', 'SCB'.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import erf

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
    if v is None or np.size(v) == 0:
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
    """Run a layer graph given MATLAB's Source/Destination connection list."""
    names = [str(layer.get("Name")) for layer in layers]
    by_name = dict(zip(names, layers, strict=True))
    sources: dict[str, dict[int, tuple[str, int]]] = {n: {} for n in names}
    out_ports = {"out": 0, "indices": 1, "size": 2}
    in_ports = {"in": 0, "indices": 1, "size": 2}
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
            args = [Value(np.asarray(inputs[name], dtype=np.float64), "")]
        else:
            args = [
                evaluate(s)[k]
                for s, k in (sources[name][i] for i in sorted(sources[name]))
            ]
        results[name] = REFERENCE[layer.classname](layer, args)
        return results[name]

    for n in names:
        evaluate(n)
    return results


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
        if spatial_dims and m.shape[0] * m.shape[1] > 1 and m.shape[:2] != x.shape[:2]:
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


@ref("nnet.cnn.layer.FeatureInputLayer")
def feature_input(layer: MatObject, xs: list[Value]) -> list[Value]:
    x = xs[0].data
    return [Value(_normalize(layer, x, 0), "CB")]


# --------------------------------------------------------------------------
# padding and windows


def _padding(
    layer: MatObject, x: np.ndarray, k: list[int], s: list[int], d: list[int]
) -> list[int]:
    """[t b l r] for this input (MATLAB recomputes 'same' from the input size)."""
    mode = text(layer, "PaddingMode", "manual")
    if mode == "same":
        out = []
        for dim in range(2):
            size = x.shape[dim]
            eff = (k[dim] - 1) * d[dim] + 1
            total = max((math.ceil(size / s[dim]) - 1) * s[dim] + eff - size, 0)
            out.append((total // 2, total - total // 2))
        return [out[0][0], out[0][1], out[1][0], out[1][1]]
    p = field(layer, "PaddingSize")
    if p is not None:
        p = np.asarray(p, dtype=float).ravel()
        return [int(v) for v in (np.repeat(p, 4) if p.size == 1 else p)]
    p = field(layer, "Padding")
    if p is not None:
        v, h = vec(layer, "Padding", 2)
        return [v, v, h, h]
    return [0, 0, 0, 0]


def _pad(x: np.ndarray, tblr: list[int], value: Any) -> np.ndarray:
    t, b, left, r = tblr
    width = [(t, b), (left, r), (0, 0), (0, 0)]
    if isinstance(value, str):
        mode = {
            "replicate": "edge",
            "symmetric-exclude-edge": "reflect",
            "symmetric-include-edge": "symmetric",
        }[value]
        return np.pad(x, width, mode=mode)
    return np.pad(x, width, mode="constant", constant_values=value)


def _windows(x: np.ndarray, k: list[int], s: list[int], d: list[int]):
    """Yield (u, v, slab) with slab[i, j] = x[i*s + u*d, j*s + v*d]."""
    H, W = x.shape[:2]
    Ho = (H - ((k[0] - 1) * d[0] + 1)) // s[0] + 1
    Wo = (W - ((k[1] - 1) * d[1] + 1)) // s[1] + 1
    for u in range(k[0]):
        for v in range(k[1]):
            a, b = u * d[0], v * d[1]
            yield u, v, x[
                a : a + (Ho - 1) * s[0] + 1 : s[0], b : b + (Wo - 1) * s[1] + 1 : s[1]
            ]


# --------------------------------------------------------------------------
# convolution


@ref("nnet.cnn.layer.Convolution2DLayer")
def conv2d(layer: MatObject, xs: list[Value]) -> list[Value]:
    x = images(xs[0])
    k = vec(layer, "FilterSize", 2)
    s = vec(layer, "Stride", 2, 1)
    d = vec(layer, "DilationFactor", 2, 1)
    value = field(layer, "PaddingValue", 0.0)
    if not isinstance(value, str):
        value = float(np.ravel(value)[0])
    xp = _pad(x, _padding(layer, x, k, s, d), value)
    nf = np.asarray(field(layer, "NumFilters"), dtype=float).ravel()
    groups = nf.size
    C = x.shape[2]
    F = int(nf.sum())
    W = full(learn(layer, "Weights"), (k[0], k[1], C // groups, F))
    b = learn(layer, "Bias")
    cg, fg = C // groups, F // groups
    outs = []
    for g in range(groups):
        acc = None
        for u, v, slab in _windows(xp[:, :, g * cg : (g + 1) * cg], k, s, d):
            term = np.einsum("ijcn,cf->ijfn", slab, W[u, v, :, g * fg : (g + 1) * fg])
            acc = term if acc is None else acc + term
        outs.append(acc)
    y = np.concatenate(outs, axis=2)
    if b is not None:
        y = y + b.ravel()[None, None, :, None]
    return [Value(y, "SSCB")]


@ref("nnet.cnn.layer.TransposedConvolution2DLayer")
def transposed_conv2d(layer: MatObject, xs: list[Value]) -> list[Value]:
    x = images(xs[0])
    k = vec(layer, "FilterSize", 2)
    s = vec(layer, "Stride", 2, 1)
    H, W_, C, N = x.shape
    F = int(num(layer, "NumFilters"))
    Wt = full(learn(layer, "Weights"), (k[0], k[1], F, C))
    full_h, full_w = s[0] * (H - 1) + k[0], s[1] * (W_ - 1) + k[1]
    y = np.zeros((full_h, full_w, F, N))
    for u in range(k[0]):
        for v in range(k[1]):
            y[
                u : u + s[0] * (H - 1) + 1 : s[0], v : v + s[1] * (W_ - 1) + 1 : s[1]
            ] += np.einsum("ijcn,fc->ijfn", x, Wt[u, v])
    if text(layer, "CroppingMode", "manual") == "same":
        crops, extra = [], []
        for dim in range(2):
            total = k[dim] - s[dim]
            crops.append((max(total, 0) // 2, max(total, 0) - max(total, 0) // 2))
            extra.append(max(-total, 0))
    else:
        c = field(layer, "CroppingSize")
        if c is not None:
            t, b_, left, r = (int(v) for v in np.broadcast_to(np.ravel(c), (4,)))
        else:
            vh = vec(layer, "Cropping", 2, 0)
            t, b_, left, r = vh[0], vh[0], vh[1], vh[1]
        crops = [(t, b_), (left, r)]
        extra = [abs(o) for o in vec(layer, "OutputSizeOffset", 2, 0)]
    y = np.pad(y, [(0, extra[0]), (0, extra[1]), (0, 0), (0, 0)])
    y = y[
        crops[0][0] : y.shape[0] - crops[0][1], crops[1][0] : y.shape[1] - crops[1][1]
    ]
    b = learn(layer, "Bias")
    if b is not None:
        y = y + b.ravel()[None, None, :, None]
    return [Value(y, "SSCB")]


# --------------------------------------------------------------------------
# fully connected


@ref("nnet.cnn.layer.FullyConnectedLayer")
def fully_connected(layer: MatObject, xs: list[Value]) -> list[Value]:
    x = xs[0]
    b = learn(layer, "Bias")
    if x.fmt == "SSCB":
        a = images(x)
        H, W_, C, N = a.shape
        flat = a.reshape(H * W_ * C, N, order="F")  # column-major: h, then w, then c
    else:
        flat = x.data
    W = learn(layer, "Weights")
    n_in = flat.shape[0]
    if W.ndim >= 3 or np.size(field(layer, "InputSize", [])) >= 3:
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
    return {"SSCB": 2, "CB": 0, "CBT": 0, "SCB": 1, "SSSCB": 3}[v.fmt]


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
    alpha, beta, K = num(layer, "Alpha"), num(layer, "Beta"), num(layer, "K")
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
    return 1.0 / (1.0 + np.exp(-x))


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


@ref("nnet.cnn.layer.MaxPooling2DLayer")
def max_pool2d(layer: MatObject, xs: list[Value]) -> list[Value]:
    x = images(xs[0])
    k = vec(layer, "PoolSize", 2)
    s = vec(layer, "Stride", 2, 1)
    xp = _pad(x, _padding(layer, x, k, s, [1, 1]), -np.inf)
    y = None
    for _, _, slab in _windows(xp, k, s, [1, 1]):
        y = slab.copy() if y is None else np.maximum(y, slab)
    return [Value(y, "SSCB")]


@ref("nnet.cnn.layer.AveragePooling2DLayer")
def avg_pool2d(layer: MatObject, xs: list[Value]) -> list[Value]:
    x = images(xs[0])
    k = vec(layer, "PoolSize", 2)
    s = vec(layer, "Stride", 2, 1)
    pads = _padding(layer, x, k, s, [1, 1])
    xp = _pad(x, pads, 0.0)
    ones = _pad(np.ones((*x.shape[:2], 1, 1)), pads, 0.0)
    total = count = None
    for (_, _, slab), (_, _, cnt) in zip(
        _windows(xp, k, s, [1, 1]), _windows(ones, k, s, [1, 1]), strict=True
    ):
        total = slab.copy() if total is None else total + slab
        count = cnt.copy() if count is None else count + cnt
    if field(layer, "PaddingValue") == "mean":
        return [Value(total / count, "SSCB")]
    return [Value(total / (k[0] * k[1]), "SSCB")]


@ref("nnet.cnn.layer.GlobalAveragePooling2DLayer")
def global_avg_pool2d(layer: MatObject, xs: list[Value]) -> list[Value]:
    return [Value(images(xs[0]).mean(axis=(0, 1), keepdims=True), "SSCB")]


@ref("nnet.cnn.layer.GlobalMaxPooling2DLayer")
def global_max_pool2d(layer: MatObject, xs: list[Value]) -> list[Value]:
    return [Value(images(xs[0]).max(axis=(0, 1), keepdims=True), "SSCB")]


# --------------------------------------------------------------------------
# outputs: identity at inference


@ref(
    "nnet.cnn.layer.ClassificationOutputLayer",
    "nnet.cnn.layer.RegressionOutputLayer",
    "nnet.cnn.layer.PixelClassificationLayer",
)
def output(layer: MatObject, xs: list[Value]) -> list[Value]:
    return [xs[0]]
