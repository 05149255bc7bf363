"""selfAttentionLayer as a small module written into model.py.

Heads own contiguous blocks of the key/value channels, scores are scaled by
1/sqrt(key channels per head) and normalized over the keys, as in MATLAB
(and in PyTorch's scaled_dot_product_attention). HasScoresOutput adds the
port 'scores': the attention weights after masking and softmax, MATLAB's
keys×queries×heads×N (unformatted, as attention() returns its weights),
(N, heads, queries, keys) in the generated code.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from codegen.ir import Call, Network, Relayout, TensorType, WrappedModule
from codegen.layers import Layer, LayerError, mat_reshape, register, to_time_first

# MATLAB's recorded predictions of a real DAGNetwork saved by R2023b
# (transformer_demo.mat of MathWorks' transformer-networks-for-time-series-
# prediction: two selfAttentionLayers, the first with AttentionMask 'causal')
# are reproduced to four digits on every window of its training and test data
# only when the causal mask is NOT applied; with it the errors move by up to a
# factor of two. No MathWorks document found states this rule, so it is
# followed as measured for networks of that kind (DAGNetwork, SeriesNetwork:
# trainNetwork's predict), and the mask stays an explicit switch in the
# generated code. dlnetwork keeps the documented mask.
PREDICT_IGNORES_CAUSAL = ("DAGNetwork", "SeriesNetwork")
MASK_COMMENT = (
    "AttentionMask 'causal' in MATLAB, but a DAGNetwork's predict() does not\n"
    "apply it (measured on MATLAB's own outputs, see README); causal=True does."
)


@dataclass(frozen=True, kw_only=True, eq=False)
class Attention(WrappedModule):
    """A selfAttentionLayer; ``comment`` goes above its constructor line."""

    template: ClassVar[str] = "attention"
    comment: str = ""
    mask_pre: Relayout = Relayout.NONE  # re-layout of the padding mask input

    def hookable(self) -> bool:
        # with_scores() computes the scores output: forward hooks do not see it
        return len(self.out_types) == 1


def for_predict(net: Network) -> Network:
    """Switch off the causal masks MATLAB's DAGNetwork predict ignores."""
    if net.matlab_class not in PREDICT_IGNORES_CAUSAL:
        return net
    nodes = []
    for node in net.nodes:
        if isinstance(node, Attention) and ("causal", True) in node.module.kwargs:
            kwargs = tuple(
                ("causal", False) if kv == ("causal", True) else kv
                for kv in node.module.kwargs
            )
            node = dataclasses.replace(
                node,
                module=dataclasses.replace(node.module, kwargs=kwargs),
                comment=MASK_COMMENT,
            )
        nodes.append(node)
    return dataclasses.replace(net, nodes=tuple(nodes))


def _size(layer: Layer, key: str, default: int) -> int:
    value = layer.raw(key)
    return (
        default if value is None or isinstance(value, str) else int(layer.number(key))
    )


@register(
    "nnet.cnn.layer.SelfAttentionLayer",
    torch="SelfAttention helper (Linear projections + scaled_dot_product_attention; "
    "with_scores() for the 'scores' output)",
)
def self_attention(layer: Layer) -> Attention:
    t = layer.in_type
    if t.format != "CT":
        raise LayerError(
            f"it attends over time steps; {t.format} data is not supported."
        )
    padding = layer.flag("HasPaddingMaskInput")
    if padding and (len(layer.in_types) != 2 or layer.in_types[1].format != "CT"):
        raise LayerError("its padding mask input is not a sequence like its data.")
    c = t.channels
    heads = int(layer.number("NumHeads"))
    key = _size(layer, "NumKeyChannels", c)
    value = _size(layer, "NumValueChannels", key)
    out = _size(layer, "OutputSize", c)
    if key % heads or value % heads:
        raise LayerError(
            f"{key} key / {value} value channels do not split into {heads} heads."
        )
    kwargs: list[tuple[str, object]] = [("num_heads", heads)]
    if key != c:
        kwargs.append(("key_channels", key))
    if value != key:
        kwargs.append(("value_channels", value))
    if out != c:
        kwargs.append(("output_size", out))
    params: dict[str, np.ndarray] = {}
    mask = layer.raw("AttentionMask", "none")
    if isinstance(mask, str):
        if mask.lower() == "causal":
            kwargs.append(("causal", True))
        elif mask.lower() != "none":
            raise LayerError(f"its AttentionMask '{mask}' is not known.")
    else:
        # MATLAB: keys × queries, 1 = may attend; PyTorch: queries × keys, True = may attend
        allowed = np.asarray(mask).astype(bool)
        if allowed.ndim != 2:
            raise LayerError("per-observation attention masks are not supported.")
        params["mask"] = allowed.T.copy()
        kwargs.append(("mask_size", tuple(int(s) for s in allowed.T.shape)))
    shapes = {
        "query": ("QueryWeights", "QueryBias", key, c),
        "key": ("KeyWeights", "KeyBias", key, c),
        "value": ("ValueWeights", "ValueBias", value, c),
        "output": ("OutputWeights", "OutputBias", out, value),
    }
    for name, (w_key, b_key, rows, cols) in shapes.items():
        w, b = layer.learnable(w_key), layer.learnable(b_key)
        if w is None or b is None:
            continue
        params[f"{name}.weight"] = mat_reshape(w, (rows, cols), w_key)
        params[f"{name}.bias"] = mat_reshape(b, (rows,), b_key)
    steps = int(params["mask"].shape[0]) if "mask" in params else 0
    out_types = (TensorType(channels=out, time=True),)
    if layer.flag("HasScoresOutput"):  # keys×queries×heads×N, after the mask
        out_types += (TensorType(channels=heads, time=True, heads=heads),)
    return Attention(
        **layer.common(),
        mask_pre=to_time_first(layer.in_types[1]) if padding else Relayout.NONE,
        max_steps=steps,
        module=Call("SelfAttention", (c,), tuple(kwargs)),
        params=params,
        pre=to_time_first(t),
        helpers=("self_attention",),
        port_names=("out", "scores")[: len(out_types)],
        out_types=out_types,
    )
