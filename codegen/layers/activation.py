"""Element-wise activations, softmax and dropout: one ``nn`` module each."""

from __future__ import annotations

from dataclasses import dataclass

from codegen.ir import Call, ModuleNode
from codegen.layers import Layer, LayerError, register


@dataclass(frozen=True, kw_only=True, eq=False)
class Elementwise(ModuleNode):
    """A parameter-free module applied to one input; the shape is kept."""


def _node(layer: Layer, call: Call) -> Elementwise:
    return Elementwise(**layer.common(), module=call, out_types=(layer.in_type,))


@register("nnet.cnn.layer.ReLULayer", torch="nn.ReLU")
def relu(layer: Layer) -> Elementwise:
    return _node(layer, Call("nn.ReLU"))


@register("nnet.cnn.layer.LeakyReLULayer", torch="nn.LeakyReLU")
def leaky_relu(layer: Layer) -> Elementwise:
    scale = layer.number("Scale", 0.01)
    return _node(layer, Call("nn.LeakyReLU", (scale,) if scale != 0.01 else ()))


@register("nnet.cnn.layer.ClippedReLULayer", torch="nn.Hardtanh(0, ceiling) / nn.ReLU6")
def clipped_relu(layer: Layer) -> Elementwise:
    ceiling = layer.number("Ceiling")
    if ceiling == 6.0:
        return _node(layer, Call("nn.ReLU6"))
    # Hardtanh(0, c) is exactly min(max(0, x), c).
    return _node(layer, Call("nn.Hardtanh", (0.0, ceiling)))


@register("nnet.cnn.layer.ELULayer", torch="nn.ELU")
def elu(layer: Layer) -> Elementwise:
    alpha = layer.number("Alpha", 1.0)
    return _node(layer, Call("nn.ELU", (alpha,) if alpha != 1.0 else ()))


@register("nnet.cnn.layer.TanhLayer", torch="nn.Tanh")
def tanh(layer: Layer) -> Elementwise:
    return _node(layer, Call("nn.Tanh"))


@register("nnet.cnn.layer.SigmoidLayer", torch="nn.Sigmoid")
def sigmoid(layer: Layer) -> Elementwise:
    return _node(layer, Call("nn.Sigmoid"))


@register("nnet.cnn.layer.SwishLayer", torch="nn.SiLU")
def swish(layer: Layer) -> Elementwise:
    return _node(layer, Call("nn.SiLU"))


@register("nnet.cnn.layer.GELULayer", torch="nn.GELU (both approximations)")
def gelu(layer: Layer) -> Elementwise:
    approx = layer.text("Approximation", "none").lower()
    if approx not in ("none", "tanh"):
        raise LayerError(f"GELU Approximation '{approx}' is not known.")
    kwargs = (("approximate", "tanh"),) if approx == "tanh" else ()
    return _node(layer, Call("nn.GELU", kwargs=kwargs))


@register("nnet.cnn.layer.SoftmaxLayer", torch="nn.Softmax over channels")
def softmax(layer: Layer) -> Elementwise:
    return _node(
        layer, Call("nn.Softmax", kwargs=(("dim", layer.in_type.channel_dim),))
    )


@register("nnet.cnn.layer.DropoutLayer", torch="nn.Dropout (identity in eval)")
def dropout(layer: Layer) -> Elementwise:
    # Identity in eval(); kept so fine-tuning in PyTorch behaves like MATLAB.
    p = layer.number("Probability", 0.5)
    return _node(layer, Call("nn.Dropout", (p,) if p != 0.5 else ()))
