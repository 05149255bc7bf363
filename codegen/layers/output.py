"""Output layers: nothing to compute at inference, but they carry meaning.

Class names become the generated module's ``CLASSES``; ``loss_kind`` tells
codegen/training.py which of MATLAB's losses the generated ``loss_fn`` returns
("custom": a user-defined layer, "stub": a built-in loss not translated).
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
    loss_kind: str = "custom"


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
    torch="none: CLASSES; loss_fn() is MATLAB's weighted cross-entropy",
)
def classification(layer: Layer) -> Output:
    weights = _weights(layer)
    loss = (
        "loss_fn() is MATLAB's training loss for it: cross-entropy of these "
        f"probabilities{' weighted by ClassWeights' if weights else ''}, divided by "
        "the number of observations (nn.CrossEntropyLoss takes logits and, with "
        "weights, divides by their sum instead)."
    )
    return Output(
        **layer.common(),
        classes=_classes(layer),
        class_weights=weights,
        loss=loss,
        loss_kind="crossentropy",
        out_types=layer.in_types,
    )


@register(
    "nnet.cnn.layer.RegressionOutputLayer",
    torch="none: loss_fn() is MATLAB's half-mean-squared-error",
)
def regression(layer: Layer) -> Output:
    loss = (
        "loss_fn() is MATLAB's training loss for it: half the squared error summed "
        "over each observation's responses"
        f"{', divided by the sequence length' if layer.in_type.time else ''}, "
        "averaged over observations (nn.MSELoss averages over every element)."
    )
    return Output(
        **layer.common(), loss=loss, loss_kind="half_mse", out_types=layer.in_types
    )


@register(
    "nnet.cnn.layer.DicePixelClassificationLayer",
    "nnet.cnn.layer.FocalLossLayer",
    "nnet.cnn.layer.YOLOv2OutputLayer",
    torch="none: CLASSES; loss_fn() raises (loss not translated)",
)
def untranslated_loss(layer: Layer) -> Output:
    """Built-in loss layers no real file uses yet: convertible, loss stubbed."""
    return Output(
        **layer.common(),
        classes=_classes(layer),
        loss_kind="stub",
        out_types=layer.in_types,
    )


@register(
    "vision.cnn.layer.RPNClassificationLayer",
    "vision.cnn.layer.BoundingBoxRegressionOutputLayer",
    torch="none; loss_fn() raises (loss not translated)",
)
def detector_loss(layer: Layer) -> Output:
    """Faster R-CNN heads (networks saved as structs): their losses are computed on the anchors and
    regions that trainFasterRCNNObjectDetector samples and labels, which the
    network file does not hold, so only the inference path is converted."""
    return Output(**layer.common(), loss_kind="stub", out_types=layer.in_types)
