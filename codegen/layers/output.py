"""Output layers: nothing to compute at inference, but they carry meaning.

Class names become the generated module's ``CLASSES`` and the loss MATLAB
trained with is named in its docstring.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from codegen.ir import Node
from codegen.layers import Layer, register


@dataclass(frozen=True, kw_only=True, eq=False)
class Output(Node):
    template: ClassVar[str] = "output"
    elide: ClassVar[bool] = True
    classes: tuple[str, ...] = ()
    class_weights: tuple[float, ...] = ()
    loss: str = ""


def _classes(layer: Layer) -> tuple[str, ...]:
    for key in ("Categories", "ClassNames", "Classes"):
        value = layer.raw(key)
        if isinstance(value, list):
            return tuple(
                str(v[0] if isinstance(v, list) and len(v) == 1 else v) for v in value
            )
        if isinstance(value, str) and value != "auto":
            return (value,)
    return ()


def _weights(layer: Layer) -> tuple[float, ...]:
    value = layer.raw("ClassWeights")
    if isinstance(value, np.ndarray) and value.dtype.kind in "fiu":
        return tuple(float(v) for v in value.ravel(order="F"))
    return ()


@register(
    "nnet.cnn.layer.ClassificationOutputLayer",
    "nnet.cnn.layer.PixelClassificationLayer",
    torch="none: CLASSES, loss named in the docstring",
)
def classification(layer: Layer) -> Output:
    weights = _weights(layer)
    pixel = layer.classname.endswith("PixelClassificationLayer")
    weight_arg = "weight=torch.tensor(CLASS_WEIGHTS), " if weights else ""
    where = "per pixel over dim 1 " if pixel else ""
    loss = (
        "MATLAB trained this output with cross-entropy on the softmax "
        f"probabilities{' weighted by ClassWeights' if weights else ''}; in "
        f"PyTorch use nn.NLLLoss({weight_arg.rstrip(', ')}) on torch.log of "
        f"this output {where}(or nn.CrossEntropyLoss on the logits before the "
        "softmax)."
    )
    return Output(
        **layer.common(),
        classes=_classes(layer),
        class_weights=weights,
        loss=loss,
        out_types=layer.in_types,
    )


@register(
    "nnet.cnn.layer.RegressionOutputLayer", torch="none: loss named in the docstring"
)
def regression(layer: Layer) -> Output:
    per_step = layer.in_type.time
    divisor = "(y.shape[0] * y.shape[1])" if per_step else "y.shape[0]"
    loss = (
        "MATLAB trained this output with half-mean-squared-error: half the squared "
        "error summed over each observation's responses"
        f"{', averaged over time steps,' if per_step else ''} and averaged over the "
        f"batch, i.e. 0.5 * F.mse_loss(y, t, reduction='sum') / {divisor}."
    )
    return Output(**layer.common(), loss=loss, out_types=layer.in_types)
