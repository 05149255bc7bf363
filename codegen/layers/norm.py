"""Normalization layers."""

from __future__ import annotations

import numpy as np

from codegen.ir import Call, ModuleNode
from codegen.layers import Layer, LayerError, mat_reshape, register


@register("nnet.cnn.layer.BatchNormalizationLayer", torch="nn.BatchNorm1d/2d")
def batch_norm(layer: Layer) -> ModuleNode:
    t = layer.in_type
    c = t.channels
    kind = {
        0: "nn.BatchNorm1d",
        1: "nn.BatchNorm1d",
        2: "nn.BatchNorm2d",
        3: "nn.BatchNorm3d",
    }
    if t.time:
        raise LayerError("batch normalization of sequences is not supported yet.")
    eps = layer.number("Epsilon", 1e-5)
    values = {
        "weight": layer.learnable("Scale"),
        "bias": layer.learnable("Offset"),
        "running_mean": layer.learnable("TrainedMean"),
        "running_var": layer.learnable("TrainedVariance"),
    }
    params: dict[str, np.ndarray] = {}
    if all(v is not None for v in values.values()):
        params = {
            k: mat_reshape(v, (c,), k) for k, v in values.items() if v is not None
        }
        params["num_batches_tracked"] = np.array(0, dtype=np.int64)
    kwargs = (("eps", eps),) if eps != 1e-5 else ()
    return ModuleNode(
        **layer.common(),
        module=Call(kind[len(t.spatial)], (c,), kwargs),
        params=params,
        out_types=(t,),
    )


@register(
    "nnet.cnn.layer.CrossChannelNormalizationLayer",
    torch="nn.LocalResponseNorm / CrossChannelNorm (even sizes)",
)
def cross_channel_norm(layer: Layer) -> ModuleNode:
    size = int(layer.number("WindowChannelSize", 5))
    alpha = layer.number("Alpha", 1e-4)
    beta = layer.number("Beta", 0.75)
    k = layer.number("K", 2.0)
    kwargs = (("alpha", alpha), ("beta", beta), ("k", k))
    if size % 2:
        # Both frameworks divide alpha by the window size; odd windows agree.
        call, helpers = Call("nn.LocalResponseNorm", (size,), kwargs), ()
    else:
        # PyTorch centres even windows one channel later than MATLAB does.
        call = Call("CrossChannelNorm", (size,), kwargs)
        helpers = ("cross_channel_norm",)
    return ModuleNode(
        **layer.common(), module=call, helpers=helpers, out_types=(layer.in_type,)
    )
