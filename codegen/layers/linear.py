"""Fully connected layers.

MATLAB flattens H×W×C inputs column-major (h fastest, then w, then c). The
weight columns are permuted here so that the generated forward is a plain
``torch.flatten(x, 1)`` of the N×C×H×W tensor followed by ``nn.Linear``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from codegen.ir import Call, ModuleNode, Relayout, TensorType
from codegen.layers import Layer, LayerError, mat_reshape, register, to_time_first
from codegen.weights import contiguous


@dataclass(frozen=True, kw_only=True, eq=False)
class Linear(ModuleNode):
    template: ClassVar[str] = "linear"
    flatten: bool = False
    pre: Relayout = Relayout.NONE  # N×C×T sequences go back to N×T×C first

    @property
    def fixes_size(self) -> bool:
        # Flattening more than one position: its in_features pin H and W.
        return self.flatten and any(math.prod(t.spatial) > 1 for t in self.in_types)


@register(
    "nnet.cnn.layer.FullyConnectedLayer",
    torch="torch.flatten + nn.Linear (weights permuted)",
)
def fully_connected(layer: Layer) -> Linear:
    t = layer.in_type
    if t.time and t.spatial:
        raise LayerError(
            "fully connected layers on image sequences are not supported yet."
        )
    spatial = t.spatial
    in_features = math.prod(spatial) * t.channels
    out = _output_size(layer)
    weights = layer.learnable("Weights")
    params: dict[str, np.ndarray] = {}
    if weights is not None:
        if not out:
            out = weights.size // in_features
        params["weight"] = _torch_weight(layer, weights, t, out)
        bias = layer.learnable("Bias")
        if bias is not None:
            params["bias"] = mat_reshape(bias, (out,), "Bias")
    if not out:
        raise LayerError("its OutputSize is unknown and it has no weights.")
    kwargs = (("bias", False),) if weights is not None and "bias" not in params else ()
    return Linear(
        **layer.common(),
        module=Call("nn.Linear", (in_features, out), kwargs),
        params=params,
        flatten=bool(spatial),
        pre=to_time_first(t),
        out_types=(TensorType(channels=out, time=t.time),),
    )


def _output_size(layer: Layer) -> int:
    # Version 2 files store OutputSize as [1 1 O].
    value = layer.raw("OutputSize")
    if value is None or isinstance(value, str):
        return 0
    return int(np.asarray(value, dtype=np.float64).ravel()[-1])


def _torch_weight(layer: Layer, w: np.ndarray, t: TensorType, out: int) -> np.ndarray:
    spatial = t.spatial or (1, 1)
    c = t.channels
    n_in = math.prod(spatial) * c
    old_size = layer.has("InputSize") and np.size(layer.raw("InputSize")) >= 3
    if w.ndim >= 3 or (old_size and w.shape != (out, n_in)):
        # Older releases: a kernel the size of the input, H×W×C×O (2-D when
        # C and O are 1). Weights already O×n_in read the same either way.
        k = mat_reshape(w, (*spatial, c, out), "Weights")
        axes = (k.ndim - 1, k.ndim - 2, *range(len(spatial)))
        return k.transpose(axes).reshape(out, -1)
    if w.ndim == 2 and w.shape != (out, n_in):  # MATLAB saves OutputSize×InputSize
        raise LayerError(
            f"its Weights are {w.shape[0]}×{w.shape[1]}; with {n_in} inputs and "
            f"{out} outputs MATLAB saves them {out}×{n_in}."
        )
    w2 = mat_reshape(w, (out, n_in), "Weights")
    if not t.spatial:
        return w2
    # Column j = h + H*w + H*W*c: a C-order index over (c, w, h).
    # Through w2.T, which is MATLAB's memory as it is: one copy, not two.
    n = len(spatial)
    w3 = w2.T.reshape(c, *reversed(spatial), out)
    w4 = w3.transpose(n + 1, 0, *range(n, 0, -1))
    return contiguous(w4).reshape(out, -1)
