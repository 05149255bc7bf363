"""Recurrent layers: LSTM, BiLSTM, GRU and their projected variants.

MATLAB's gate order (LSTM i, f, g, o; GRU r, z, h̃) is PyTorch's, so weights
copy straight across; MATLAB's single bias goes to ``bias_ih`` (``bias_hh`` is
zero) except for GRU 'recurrent-bias-after-multiplication', whose 6H bias is
exactly PyTorch's pair. Activations PyTorch's fused kernels lack (softsign,
relu, hard-sigmoid) and GRU 'before-multiplication' use small cells written
into model.py with the same parameter names.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from codegen.ir import Call, ModuleNode, Relayout, TensorType
from codegen.layers import Layer, LayerError, mat_array, mat_reshape, register


@dataclass(frozen=True, kw_only=True, eq=False)
class Recurrent(ModuleNode):
    template: ClassVar[str] = "recurrent"
    hidden: int = 0
    bidirectional: bool = False
    last: bool = False  # OutputMode 'last'
    cell: bool = True  # LSTM (has a cell state) or GRU
    pre: Relayout = Relayout.NONE  # re-layout of the input (N×C×T → N×T×C)
    state_inputs: bool = False
    state_outputs: bool = False
    initial: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

    def buffers(self) -> dict[str, np.ndarray]:
        return self.initial

    def hookable(self) -> bool:
        return False  # its module's output is not the layer's output


def _activation(layer: Layer, key: str, default: str, allowed: tuple[str, ...]) -> str:
    value = layer.text(key, default).lower()
    if value not in allowed:
        raise LayerError(f"its {key} '{value}' is not known.")
    return value


def _recurrent(
    layer: Layer, *, cell: bool, bidirectional: bool, projected: bool = False
) -> Recurrent:
    t = layer.in_type
    if t.format != "CT":
        raise LayerError(
            f"it expects vector sequences but receives {t.format} data ({t.matlab}).",
            hint="Flatten image sequences first (flattenLayer).",
        )
    hidden = int(layer.number("NumHiddenUnits"))
    gates = 4 if cell else 3
    dirs = 2 if bidirectional else 1
    rows = dirs * gates * hidden
    in_size = t.channels
    name = "LSTM" if cell else "GRU"

    state = _activation(
        layer, "StateActivationFunction", "tanh", ("tanh", "softsign", "relu")
    )
    gate = _activation(
        layer, "GateActivationFunction", "sigmoid", ("sigmoid", "hard-sigmoid")
    )
    reset = "after-multiplication"
    if not cell:
        reset = _activation(
            layer,
            "ResetGateMode",
            "after-multiplication",
            (
                "after-multiplication",
                "before-multiplication",
                "recurrent-bias-after-multiplication",
            ),
        )

    params: dict[str, np.ndarray] = {}
    w_in, w_rec, bias = (
        layer.learnable(k) for k in ("InputWeights", "RecurrentWeights", "Bias")
    )
    if w_in is not None and w_rec is not None and bias is not None:
        if projected:
            w_in, w_rec = _unproject(layer, w_in, w_rec, rows, in_size, hidden)
        w_in = mat_array(w_in, (rows, in_size), "InputWeights")
        w_rec = mat_array(w_rec, (rows, hidden), "RecurrentWeights")
        two_biases = reset == "recurrent-bias-after-multiplication"
        bias = mat_reshape(bias, (rows * (2 if two_biases else 1),), "Bias")
        size = gates * hidden
        for d, suffix in enumerate(("", "_reverse")[:dirs]):
            block = slice(d * size, (d + 1) * size)
            params[f"weight_ih_l0{suffix}"] = w_in[block]
            params[f"weight_hh_l0{suffix}"] = w_rec[block]
            if two_biases:  # rows 1:3H input bias, 3H+1:6H recurrent bias
                params[f"bias_ih_l0{suffix}"] = bias[:size]
                params[f"bias_hh_l0{suffix}"] = bias[size:]
            else:
                params[f"bias_ih_l0{suffix}"] = bias[block]
                params[f"bias_hh_l0{suffix}"] = np.zeros(size, np.float32)

    native = state == "tanh" and gate == "sigmoid" and reset != "before-multiplication"
    kwargs: list[tuple[str, object]] = [("batch_first", True)] if native else []
    if bidirectional:
        kwargs.append(("bidirectional", True))
    helpers: tuple[str, ...] = ()
    func = f"nn.{name}"
    if not native:  # batch-first always
        func, helpers = f"Matlab{name}", (f"matlab_{name.lower()}",)
        if state != "tanh":
            kwargs.append(("state_activation", state))
        if gate != "sigmoid":
            kwargs.append(("gate_activation", gate))
        if reset == "before-multiplication":
            kwargs.append(("reset_gate", "before-multiplication"))

    last = _last(layer)
    state_in = layer.flag("HasStateInputs")
    state_out = layer.flag("HasStateOutputs")
    if state_in and len(layer.inputs) != (3 if cell else 2):
        raise LayerError("its state inputs are not all connected.")
    initial = {} if state_in else _initial_state(layer, cell, dirs, hidden)
    width = dirs * hidden
    out = TensorType(channels=width) if last else TensorType(channels=width, time=True)
    port_names = ("out",)
    out_types = (out,)
    if state_out:
        port_names = ("out", "hidden", "cell") if cell else ("out", "hidden")
        out_types = (out, *[TensorType(channels=width)] * (len(port_names) - 1))
    return Recurrent(
        **layer.common(),
        module=Call(func, (in_size, hidden), tuple(kwargs)),
        params=params,
        helpers=helpers,
        hidden=hidden,
        bidirectional=bidirectional,
        last=last,
        cell=cell,
        pre=Relayout.SWAP_TIME if t.time_last else Relayout.NONE,
        state_inputs=state_in,
        state_outputs=state_out,
        initial=initial,
        port_names=port_names,
        out_types=out_types,
    )


def _last(layer: Layer) -> bool:
    if layer.has("OutputMode"):
        mode = layer.text("OutputMode").lower()
        if mode not in ("sequence", "last"):
            raise LayerError(f"its OutputMode '{mode}' is not known.")
        return mode == "last"
    return not layer.flag("ReturnSequence", True)  # releases before OutputMode


def _initial_state(
    layer: Layer, cell: bool, dirs: int, hidden: int
) -> dict[str, np.ndarray]:
    """Non-zero stored states become buffers (predict starts from them)."""
    out = {}
    keys = {
        "h0": ("HiddenState", "InitialHiddenState"),
        "c0": ("CellState", "InitialCellState"),
    }
    for name, (current, initial) in keys.items():
        if name == "c0" and not cell:
            continue
        value = layer.state_value(current)
        if value is None:
            value = layer.state_value(initial)
        if value is None:
            continue
        value = mat_reshape(value, (dirs * hidden,), current)  # a zero state too
        if np.any(value):
            out[name] = value.reshape(dirs, 1, hidden)
    if out and cell:  # both are needed once either is set
        for name in ("h0", "c0"):
            out.setdefault(name, np.zeros((dirs, 1, hidden), np.float32))
    return out


def _unproject(
    layer: Layer,
    w_in: np.ndarray,
    w_rec: np.ndarray,
    rows: int,
    in_size: int,
    hidden: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Multiply the low-rank factors back into full weights."""
    p_in = layer.learnable("InputProjector")
    p_out = layer.learnable("OutputProjector")
    if p_in is None or p_out is None:
        raise LayerError("its projector weights are missing.")
    in_rank = int(layer.number("InputProjectorSize"))
    out_rank = int(layer.number("OutputProjectorSize"))
    p_in = mat_array(p_in, (in_size, in_rank), "InputProjector")
    p_out = mat_array(p_out, (hidden, out_rank), "OutputProjector")
    w_in = mat_array(w_in, (rows, in_rank), "InputWeights") @ p_in.T
    w_rec = mat_array(w_rec, (rows, out_rank), "RecurrentWeights") @ p_out.T
    return w_in.astype(np.float32), w_rec.astype(np.float32)


@register("nnet.cnn.layer.LSTMLayer", torch="nn.LSTM(batch_first=True) / MatlabLSTM")
def lstm(layer: Layer) -> Recurrent:
    return _recurrent(layer, cell=True, bidirectional=False)


@register(
    "nnet.cnn.layer.BiLSTMLayer",
    torch="nn.LSTM(bidirectional=True); 'last' = [forward last step; backward first step]",
)
def bilstm(layer: Layer) -> Recurrent:
    return _recurrent(layer, cell=True, bidirectional=True)


@register("nnet.cnn.layer.GRULayer", torch="nn.GRU(batch_first=True) / MatlabGRU")
def gru(layer: Layer) -> Recurrent:
    return _recurrent(layer, cell=False, bidirectional=False)


@register("nnet.cnn.layer.BiGRULayer", torch="nn.GRU(bidirectional=True) / MatlabGRU")
def bigru(layer: Layer) -> Recurrent:
    return _recurrent(layer, cell=False, bidirectional=True)


@register(
    "nnet.cnn.layer.LSTMProjectedLayer",
    torch="nn.LSTM with the projector factors multiplied out",
)
def lstm_projected(layer: Layer) -> Recurrent:
    return _recurrent(layer, cell=True, bidirectional=False, projected=True)


@register(
    "nnet.cnn.layer.GRUProjectedLayer",
    torch="nn.GRU with the projector factors multiplied out",
)
def gru_projected(layer: Layer) -> Recurrent:
    return _recurrent(layer, cell=False, bidirectional=False, projected=True)
