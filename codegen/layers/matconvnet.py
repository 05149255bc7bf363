"""MatConvNet layers (SimpleNN types and DagNN blocks) on the toolbox's node kinds.

Where a MatConvNet layer computes exactly what a Deep Learning Toolbox layer
computes once its fields are translated, the handler translates the fields
and reuses that layer's handler; the record keeps MatConvNet's class name.
The rules, with their sources, are in README ("MatConvNet support") and in
the MatConvNet section of codegen/reference.py:

- weights are H×W×C×F (C = input channels per group; G = C_in / C groups of
  consecutive channels and filters), cross-correlated, no flip; ``pad`` is a
  scalar or [top bottom left right] of zeros; ``stride``, ``dilate`` [y x];
- max pooling ignores padding; average pooling divides by the number of
  real (unpadded) elements in the window;
- ``convt`` filters are H×W×K×C_in, ``upsample`` is the stride, ``crop``
  [t b l r] is removed from the full output UP·(X−1)+F; ``numGroups`` G makes
  K·G outputs, group g from input channels g·C_in/G.. (PyTorch's layout);
- ``bnorm`` moments are [mean sigma] with sigma = sqrt(var + epsilon) already;
  at test time y = g·(x − mean)/sigma + b, epsilon is not added again;
- ``lrn``/``normalize`` param [N kappa alpha beta]: alpha is NOT divided by N;
- ``dropout`` is the identity in test mode; loss layers only train.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from codegen.ir import Call, CombineOp, ModuleNode, Node, TensorType
from codegen.layers import Layer, LayerError, mat_reshape, register
from codegen.layers.activation import Elementwise
from codegen.layers.combine import Combine
from codegen.layers.conv import _plain, _transposed, expect_images
from codegen.layers.input import image_input
from codegen.layers.norm import cross_channel_norm
from codegen.layers.output import Output
from codegen.layers.pool import _avg_pool, _max_pool
from codegen.layers.spatial import Crop
from codegen.matfile import MatObject


def _as(layer: Layer, fields: dict[str, Any]) -> Layer:
    """The same layer seen with toolbox field names (class name unchanged)."""
    record = MatObject(layer.classname, {"Name": layer.name, **fields})
    return dataclasses.replace(layer, record=record)


def _pad4(layer: Layer, key: str) -> np.ndarray:
    value = np.asarray(layer.raw(key, 0.0), dtype=np.float64).ravel()
    if value.size not in (1, 4):
        raise LayerError(
            f"its '{key}' has {value.size} entries; expected 1 or 4 [t b l r]."
        )
    return np.broadcast_to(value, (4,)).copy()


def _pair(layer: Layer, key: str, default: int) -> np.ndarray:
    value = np.asarray(layer.raw(key, float(default)), dtype=np.float64).ravel()
    if value.size not in (1, 2):
        raise LayerError(
            f"its '{key}' has {value.size} entries; expected 1 or 2 [y x]."
        )
    return np.broadcast_to(value, (2,)).copy()


def _filters(layer: Layer) -> np.ndarray:
    filters = layer.learnable("filters")
    if filters is None:
        raise LayerError("it has no filters (weights{1} is empty).")
    return filters


@register(
    "matconvnet.conv",
    "dagnn.Conv",
    torch="nn.Conv2d (groups = C_in / size(W, 3); + F.pad for asymmetric pad)",
)
def conv(layer: Layer) -> Node:
    t = expect_images(layer, 2)
    w = _filters(layer)
    h, wd, per_group, count = (*w.shape, 1, 1, 1)[:4] if w.ndim < 4 else w.shape
    if t.channels % per_group:
        raise LayerError(
            f"its filters have depth {per_group}, which does not divide the "
            f"{t.channels} input channels."
        )
    groups = t.channels // per_group
    if count % groups:
        raise LayerError(f"its {count} filters cannot be split into {groups} groups.")
    fields = {
        "FilterSize": np.array([h, wd], dtype=np.float64),
        "NumFilters": np.full(groups, count // groups, dtype=np.float64),
        "Weights": w,
        "Stride": _pair(layer, "stride", 1),
        "DilationFactor": _pair(layer, "dilate", 1),
        "PaddingSize": _pad4(layer, "pad"),
    }
    bias = layer.learnable("biases")
    if bias is not None:
        fields["Bias"] = bias
    return _plain(_as(layer, fields), 2)


@register(
    "matconvnet.convt",
    "dagnn.ConvTranspose",
    torch="nn.ConvTranspose2d (stride = upsample, + crop)",
)
def convt(layer: Layer) -> Node:
    t = expect_images(layer, 2)
    w = _filters(layer)
    h, wd, count, depth = (*w.shape, 1, 1, 1)[:4] if w.ndim < 4 else w.shape
    groups = int(layer.number("numGroups", 1))
    if depth != t.channels or t.channels % groups:
        raise LayerError(
            f"its filters have depth {depth} for {t.channels} input channels "
            f"in {groups} group(s)."
        )
    fields = {
        "FilterSize": np.array([h, wd], dtype=np.float64),
        "NumFilters": float(count),
        "Weights": w,
        "Stride": _pair(layer, "upsample", 1),
        "CroppingSize": _pad4(layer, "crop"),
    }
    bias = layer.learnable("biases")
    if groups == 1:
        if bias is not None:
            fields["Bias"] = bias
        return _transposed(_as(layer, fields), 2)
    # numGroups G: input group g (D/G channels) makes outputs g·K ... g·K+K-1
    # with the filters F(:,:,:,channels of g): PyTorch's grouped layout as is.
    node = _transposed(_as(layer, fields), 2)
    out_c = count * groups
    kwargs = tuple(kw for kw in node.module.kwargs if kw[0] != "bias")
    params = dict(node.params)
    if bias is not None:
        params["bias"] = mat_reshape(bias, (out_c,), "biases")
    else:
        kwargs += (("bias", False),)
    call = Call(node.module.func, (t.channels, out_c), (*kwargs, ("groups", groups)))
    out = dataclasses.replace(node.out_type, channels=out_c)
    return dataclasses.replace(node, module=call, params=params, out_types=(out,))


@register(
    "matconvnet.pool",
    "dagnn.Pooling",
    torch="nn.MaxPool2d / nn.AvgPool2d(count_include_pad=False) / AvgPoolMeanPad2d",
)
def pool(layer: Layer) -> Node:
    method = layer.text("method", "max").lower()
    fields = {
        "PoolSize": _pair(layer, "pool", 1),
        "Stride": _pair(layer, "stride", 1),
        "PaddingSize": _pad4(layer, "pad"),
    }
    if method == "max":
        return _max_pool(_as(layer, fields), 2)
    if method == "avg":  # the divisor counts the real elements only
        return _avg_pool(_as(layer, {**fields, "PaddingValue": "mean"}), 2)
    raise LayerError(f"its pooling method '{method}' is not known.")


def _elementwise(layer: Layer, call: Call) -> Elementwise:
    return Elementwise(**layer.common(), module=call, out_types=(layer.in_type,))


@register("matconvnet.relu", "dagnn.ReLU", torch="nn.ReLU / nn.LeakyReLU(leak)")
def relu(layer: Layer) -> Node:
    leak = layer.number("leak", 0.0)
    return _elementwise(
        layer, Call("nn.LeakyReLU", (leak,)) if leak else Call("nn.ReLU")
    )


@register("matconvnet.sigmoid", "dagnn.Sigmoid", torch="nn.Sigmoid")
def sigmoid(layer: Layer) -> Node:
    return _elementwise(layer, Call("nn.Sigmoid"))


@register("matconvnet.softmax", "dagnn.SoftMax", torch="nn.Softmax(dim=1)")
def softmax(layer: Layer) -> Node:
    return _elementwise(layer, Call("nn.Softmax", kwargs=(("dim", 1),)))


@register(
    "matconvnet.dropout", "dagnn.DropOut", torch="nn.Dropout(rate) (identity in eval)"
)
def dropout(layer: Layer) -> Node:
    rate = layer.number("rate", 0.5)
    return _elementwise(layer, Call("nn.Dropout", (rate,) if rate != 0.5 else ()))


@register(
    "matconvnet.lrn",
    "matconvnet.normalize",
    "dagnn.LRN",
    torch="nn.LocalResponseNorm(N, alpha·N, beta, kappa) / CrossChannelNorm (even N)",
)
def lrn(layer: Layer) -> Node:
    param = np.asarray(layer.raw("param", np.zeros(0)), dtype=np.float64).ravel()
    if param.size != 4:
        raise LayerError("its 'param' is not [N kappa alpha beta].")
    n, kappa, alpha, beta = param
    # MatConvNet does not divide alpha by N; the toolbox (and PyTorch) do.
    fields = {
        "WindowChannelSize": float(n),
        "Alpha": float(alpha * n),
        "Beta": float(beta),
        "K": float(kappa),
    }
    return cross_channel_norm(_as(layer, fields))


@register(
    "matconvnet.bnorm",
    "dagnn.BatchNorm",
    torch="nn.BatchNorm2d (running_var = sigma² − epsilon)",
)
def bnorm(layer: Layer) -> Node:
    c = layer.in_type.channels
    g, b, m = (layer.learnable(k) for k in ("multipliers", "biases", "moments"))
    if g is None or b is None or m is None:
        raise LayerError("it needs its multipliers, biases and moments [mean sigma].")
    moments = mat_reshape(m.astype(np.float64), (c, 2), "moments")
    sigma2 = moments[:, 1] ** 2
    eps = layer.number("epsilon", 1e-4)
    # The saved sigma already holds epsilon; PyTorch adds eps to running_var.
    if sigma2.min() < eps:
        eps = 0.0
    params = {
        "weight": mat_reshape(g, (c,), "multipliers"),
        "bias": mat_reshape(b, (c,), "biases"),
        "running_mean": moments[:, 0].astype(np.float32),
        "running_var": (sigma2 - eps).astype(np.float32),
        "num_batches_tracked": np.array(0, dtype=np.int64),
    }
    kwargs = () if eps == 1e-5 else (("eps", eps),)
    return ModuleNode(
        **layer.common(),
        module=Call("nn.BatchNorm2d", (c,), kwargs),
        params=params,
        out_types=(layer.in_type,),
    )


@register(
    "dagnn.Scale", torch="nn.Conv2d(C, C, 1, groups=C): x · scale + bias per channel"
)
def scale(layer: Layer) -> Node:
    t = expect_images(layer, 2)
    c = t.channels
    s = layer.learnable("scale")
    if s is None or s.size != c:
        raise LayerError(
            "only a per-channel scale (1×1×C parameter) is supported; "
            "a second input or a scalar/full-size scale is not."
        )
    params = {"weight": s.reshape(c, 1, 1, 1)}
    bias = layer.learnable("biases")
    kwargs: tuple[tuple[str, object], ...] = (("groups", c),)
    if bias is not None and layer.flag("hasBias", True):
        params["bias"] = mat_reshape(bias, (c,), "biases")
    else:
        kwargs += (("bias", False),)
    return ModuleNode(
        **layer.common(),
        module=Call("nn.Conv2d", (c, c, 1), kwargs),
        params=params,
        out_types=(t,),
    )


@register("dagnn.Sum", torch="a + b + ... (all inputs)")
def sum_(layer: Layer) -> Node:
    first = layer.in_type
    if any(t != first for t in layer.in_types):
        sizes = ", ".join(t.matlab for t in layer.in_types)
        raise LayerError(f"its inputs differ in size ({sizes}).")
    return Combine(**layer.common(), op=CombineOp.ADD, out_types=(first,))


@register("dagnn.Concat", torch="torch.cat along dim (MATLAB 1-3 → 2, 3, 1)")
def concat(layer: Layer) -> Node:
    dim = int(layer.number("dim", 3))
    first = expect_images(layer, 2)
    if dim not in (1, 2, 3):
        raise LayerError(
            f"it concatenates along dimension {dim}; only 1, 2, 3 are supported."
        )
    sizes = [[*t.spatial, t.channels] for t in layer.in_types]
    rest = [[v for i, v in enumerate(s) if i != dim - 1] for s in sizes]
    if any(r != rest[0] for r in rest):
        shapes = " and ".join(t.matlab for t in layer.in_types)
        raise LayerError(f"its inputs ({shapes}) differ outside dimension {dim}.")
    out = list(sizes[0])
    out[dim - 1] = sum(s[dim - 1] for s in sizes)
    t = TensorType(spatial=tuple(out[:2]), channels=out[2])
    return Combine(
        **layer.common(), op=CombineOp.CAT, dim=first.torch_dim(dim), out_types=(t,)
    )


@register(
    "dagnn.Crop", torch="crop_like helper (top-left from crop, as getAdaptedCrops)"
)
def crop(layer: Layer) -> Node:
    t = expect_images(layer, 2)
    if len(layer.inputs) != 2:
        raise LayerError("it needs both its inputs (the data and the reference).")
    ref = layer.in_types[1]
    diff = [a - b for a, b in zip(t.spatial, ref.spatial, strict=True)]
    if min(diff) < 0:
        raise LayerError(
            f"its reference ({ref.matlab}) is larger than its input ({t.matlab})."
        )
    base = _pair(layer, "crop", 0)
    top_left = tuple(int(min(c, d)) for c, d in zip(base, diff, strict=True))
    out = TensorType(spatial=ref.spatial, channels=t.channels)
    return Crop(
        **layer.common(), location=top_left, helpers=("crop_like",), out_types=(out,)
    )


_LOSS_TEXT = {
    "softmaxlog": "softmax log-loss on these scores: nn.CrossEntropyLoss on this output",
    "softmaxloss": "softmax log-loss on these scores: nn.CrossEntropyLoss on this output",
    "log": "log-loss on these probabilities: nn.NLLLoss on torch.log of this output",
    "logistic": "logistic loss: nn.SoftMarginLoss on this output",
}


@register(
    "matconvnet.softmaxloss",
    "matconvnet.loss",
    "matconvnet.pdist",
    "dagnn.Loss",
    "dagnn.PDist",
    "dagnn.EuclideanLoss",
    torch="none: training only; the loss is named in the docstring",
)
def loss(layer: Layer) -> Node:
    named = layer.text("loss", layer.classname.rsplit(".", 1)[-1])
    text = _LOSS_TEXT.get(named.lower())
    loss_ = (
        f"MatConvNet trained this output with {text}."
        if text
        else f"MatConvNet trained this output with {named}; that loss is not translated."
    )
    note = f"The training-only layer {layer.name!r} ({layer.classname}, loss {named}) is left out."
    return Output(
        **layer.common(), loss=loss_, notes=(note,), out_types=layer.in_types[:1]
    )


@register(
    "matconvnet.input",
    torch="normalization buffers in forward (meta.normalization.averageImage)",
)
def input_(layer: Layer) -> Node:
    fields: dict[str, Any] = {"InputSize": layer.raw("imageSize")}
    if layer.has("Normalization"):  # {zerocenter, averageImage} from the reader
        fields["Normalization"] = layer.raw("Normalization")
    return image_input(_as(layer, fields))


@register("matconvnet.custom", torch="refused: user code")
def custom(layer: Layer) -> Node:
    raise LayerError(
        "is a 'custom' SimpleNN layer; the file holds its fields, not its "
        "forward function.",
        hint="Replace it with built-in layers, or write its PyTorch code by hand.",
    )
