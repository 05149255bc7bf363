"""Normalization layers.

Scale and Offset are per channel in every MATLAB normalization layer, so
image layer/instance normalization maps to GroupNorm/InstanceNorm with
per-channel affine parameters rather than LayerNorm over [C, H, W].
"""

from __future__ import annotations

import dataclasses

import numpy as np

from codegen.ir import Call, ModuleNode, Relayout, WrappedModule
from codegen.layers import Layer, LayerError, mat_reshape, register
from codegen.text import doc


def _affine(layer: Layer, c: int) -> dict[str, np.ndarray]:
    scale, offset = layer.learnable("Scale"), layer.learnable("Offset")
    if scale is None or offset is None:
        return {}
    return {
        "weight": mat_reshape(scale, (c,), "Scale"),
        "bias": mat_reshape(offset, (c,), "Offset"),
    }


def _eps(layer: Layer) -> tuple[tuple[str, object], ...]:
    eps = layer.number("Epsilon", 1e-5)
    return (("eps", eps),) if eps != 1e-5 else ()


def _node(
    layer: Layer, call: Call, params: dict, *, sequence_channels_first: bool
) -> ModuleNode:
    """Wrap the module in transposes when the sequence layout is not its own.

    ``sequence_channels_first``: the module wants N×C×T (BatchNorm1d,
    GroupNorm) rather than N×T×C (LayerNorm over C).
    """
    t = layer.in_type
    if t.format == "CT" and t.time_last == sequence_channels_first:
        return ModuleNode(**layer.common(), module=call, params=params, out_types=(t,))
    if t.format == "CT":  # switch layout and stay there: no transpose back
        return WrappedModule(
            **layer.common(),
            module=call,
            params=params,
            pre=Relayout.SWAP_TIME,
            out_types=(dataclasses.replace(t, time_last=sequence_channels_first),),
        )
    if t.time:
        raise LayerError(f"normalizing {t.format} sequences is not supported yet.")
    return ModuleNode(**layer.common(), module=call, params=params, out_types=(t,))


@register("nnet.cnn.layer.BatchNormalizationLayer", torch="nn.BatchNorm1d/2d/3d")
def batch_norm(layer: Layer) -> ModuleNode:
    t = layer.in_type
    c = t.channels
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
    nd = max(len(t.spatial), 1)
    call = Call(f"nn.BatchNorm{nd}d", (c,), (*_eps(layer), *_momentum(layer)))
    node = _node(layer, call, params, sequence_channels_first=True)
    if layer.has("VarianceDecay") and layer.has("MeanDecay"):
        mean, var = layer.number("MeanDecay"), layer.number("VarianceDecay")
        if mean != var:
            note = (
                f"{doc(layer.name)}: MATLAB's VarianceDecay {var:g} differs from its "
                f"MeanDecay {mean:g}; PyTorch's one momentum follows MeanDecay, so "
                "in training the running variance updates at that rate."
            )
            node = dataclasses.replace(node, notes=(*node.notes, note))
    return node


def _momentum(layer: Layer) -> tuple[tuple[str, object], ...]:
    """MATLAB's MeanDecay is PyTorch's momentum (s = d*batch + (1-d)*s).

    Layers saved before MeanDecay existed had their statistics computed over
    the whole training set after training: momentum=None (a cumulative
    average) is PyTorch's nearest. PyTorch has one momentum for mean and
    variance; a different VarianceDecay is not kept (the README says so).
    """
    if not layer.has("MeanDecay"):
        return (("momentum", None),) if layer.has("TrainedMean") else ()
    decay = layer.number("MeanDecay")
    return (("momentum", decay),) if decay != 0.1 else ()


@register(
    "nnet.cnn.layer.CrossChannelNormalizationLayer",
    torch="nn.LocalResponseNorm / CrossChannelNorm (even sizes)",
)
def cross_channel_norm(layer: Layer) -> ModuleNode:
    size = int(layer.number("WindowChannelSize"))  # MATLAB requires it
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


@register(
    "nnet.cnn.layer.LayerNormalizationLayer",
    torch="nn.GroupNorm(1, C) over S and C / nn.LayerNorm(C) over C",
)
def layer_norm(layer: Layer) -> ModuleNode:
    t = layer.in_type
    c = t.channels
    params = _affine(layer, c)
    # Releases before OperationDimension normalized over every non-batch
    # dimension, time included ('batch-excluded').
    dims = layer.text("OperationDimension", "batch-excluded").lower()
    if dims == "auto":
        dims = "spatial-channel" if len(t.spatial) > 1 else "channel-only"
    if dims not in ("channel-only", "spatial-channel", "batch-excluded"):
        raise LayerError(f"its OperationDimension '{dims}' is not known.")
    over_c_only = (
        dims == "channel-only"
        or (not t.spatial and not t.time)
        or (dims == "spatial-channel" and not t.spatial)
    )
    if over_c_only:
        call = Call("nn.LayerNorm", (c,), _eps(layer))
        if t.format == "CT":
            return _node(layer, call, params, sequence_channels_first=False)
        if t.format == "C":
            return ModuleNode(
                **layer.common(), module=call, params=params, out_types=(t,)
            )
        if t.time:
            raise LayerError(
                f"layer normalization of {t.format} data is not supported yet."
            )
        return WrappedModule(
            **layer.common(),
            module=call,
            params=params,
            pre=Relayout.CHANNELS_LAST,
            post=Relayout.CHANNELS_FIRST,
            out_types=(t,),
        )
    if dims == "spatial-channel" and t.time:
        raise LayerError(
            "'spatial-channel' normalization of sequences is not supported yet."
        )
    # over C and every S (and T for 'batch-excluded'): one group of all channels
    call = Call("nn.GroupNorm", (1, c), _eps(layer))
    return _node(layer, call, params, sequence_channels_first=True)


@register(
    "nnet.cnn.layer.GroupNormalizationLayer",
    torch="nn.GroupNorm(G, C)",
)
def group_norm(layer: Layer) -> ModuleNode:
    t = layer.in_type
    c = t.channels
    groups_value = layer.raw("NumGroups")
    if isinstance(groups_value, str):
        groups = {"all-channels": 1, "channel-wise": c}.get(groups_value.lower())
        if groups is None:
            raise LayerError(f"its NumGroups '{groups_value}' is not known.")
    else:
        groups = int(layer.number("NumGroups"))
    if c % groups:
        raise LayerError(f"{c} channels cannot be split into {groups} groups.")
    call = Call("nn.GroupNorm", (groups, c), _eps(layer))
    return _node(layer, call, _affine(layer, c), sequence_channels_first=True)


@register(
    "nnet.cnn.layer.InstanceNormalizationLayer",
    torch="nn.InstanceNorm1d/2d/3d(affine=True)",
)
def instance_norm(layer: Layer) -> ModuleNode:
    t = layer.in_type
    c = t.channels
    nd = max(len(t.spatial), 1)
    call = Call(f"nn.InstanceNorm{nd}d", (c,), (*_eps(layer), ("affine", True)))
    return _node(layer, call, _affine(layer, c), sequence_channels_first=True)
