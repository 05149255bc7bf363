"""Layers that combine several inputs: written as plain expressions in forward."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

from codegen.ir import CombineOp, Node, Relayout, TensorType
from codegen.layers import Layer, LayerError, common_layout, register


@dataclass(frozen=True, kw_only=True, eq=False)
class Combine(Node):
    template: ClassVar[str] = "combine"
    op: CombineOp
    dim: int = 1
    pres: tuple[Relayout, ...] = ()  # per input: re-layout of mixed sequences


def _combine(layer: Layer, op: CombineOp, out: TensorType, dim: int = 1) -> Combine:
    pres, time_last = common_layout(layer.in_types)
    out = dataclasses.replace(out, time_last=time_last)
    if op is CombineOp.CAT and out.time:
        dim = out.torch_dim(dim)
    return Combine(**layer.common(), op=op, dim=dim, pres=pres, out_types=(out,))


def _broadcast(layer: Layer) -> TensorType:
    first = layer.in_types[0]
    spatial = list(first.spatial)
    channels = first.channels
    for t in layer.in_types[1:]:
        if len(t.spatial) != len(spatial) or t.time != first.time:
            raise LayerError(
                f"its inputs have different formats ({first.format}, {t.format})."
            )
        for i, (a, b) in enumerate(zip(spatial, t.spatial, strict=True)):
            if a != b and 1 not in (a, b):
                raise LayerError(
                    f"its inputs' sizes differ ({first.matlab} and {t.matlab}); "
                    "MATLAB rejects this network too."
                )
            spatial[i] = max(a, b)
        if channels != t.channels and 1 not in (channels, t.channels):
            raise LayerError(
                f"its inputs' channels differ ({first.matlab} and {t.matlab})."
            )
        channels = max(channels, t.channels)
    return TensorType(spatial=tuple(spatial), channels=channels, time=first.time)


def _inputs(layer: Layer) -> None:
    expected = int(layer.number("NumInputs", len(layer.inputs)))
    if len(layer.inputs) != expected:
        raise LayerError(f"{len(layer.inputs)} of its {expected} inputs are connected.")


@register("nnet.cnn.layer.AdditionLayer", torch="a + b + ...")
def addition(layer: Layer) -> Combine:
    _inputs(layer)
    return _combine(layer, CombineOp.ADD, _broadcast(layer))


@register("nnet.cnn.layer.MultiplicationLayer", torch="a * b * ...")
def multiplication(layer: Layer) -> Combine:
    _inputs(layer)
    return _combine(layer, CombineOp.MUL, _broadcast(layer))


def _concatenate(layer: Layer, matlab_dim: int) -> Combine:
    _inputs(layer)
    first = layer.in_types[0]
    letters = first.matlab_format
    if not 1 <= matlab_dim <= len(letters) or letters[matlab_dim - 1] == "B":
        raise LayerError(
            f"it concatenates along dimension {matlab_dim} of {letters} data."
        )
    if any(t.matlab_format != letters for t in layer.in_types):
        raise LayerError("its inputs have different formats.")
    letter = letters[matlab_dim - 1]

    def sizes(t: TensorType) -> list[int]:
        return [*t.spatial, t.channels]

    axis = matlab_dim - 1 if letter != "T" else None
    if axis is not None:
        rest = [
            [v for i, v in enumerate(sizes(t)) if i != axis] for t in layer.in_types
        ]
        if any(r != rest[0] for r in rest):
            shapes = " and ".join(t.matlab for t in layer.in_types)
            raise LayerError(
                f"its inputs ({shapes}) differ in a dimension other than the "
                "concatenated one; MATLAB rejects this network too.",
                hint="Fix the sizes in MATLAB (e.g. with a crop2dLayer) and save again.",
            )
        total = sum(sizes(t)[axis] for t in layer.in_types)
        out_sizes = sizes(first)
        out_sizes[axis] = total
    else:
        if any(sizes(t) != sizes(first) for t in layer.in_types):
            raise LayerError("its inputs differ in a dimension other than time.")
        out_sizes = sizes(first)
    out = TensorType(
        spatial=tuple(out_sizes[:-1]), channels=out_sizes[-1], time=first.time
    )
    if first.time:  # the torch axis depends on the layout the inputs end up in
        return _combine(layer, CombineOp.CAT, out, matlab_dim)
    return _combine(layer, CombineOp.CAT, out, first.torch_dim(matlab_dim))


@register("nnet.cnn.layer.DepthConcatenationLayer", torch="torch.cat(..., dim=1)")
def depth_concatenation(layer: Layer) -> Combine:
    return _concatenate(layer, layer.in_type.matlab_format.index("C") + 1)


@register("nnet.cnn.layer.ConcatenationLayer", torch="torch.cat along MATLAB's Dim")
def concatenation(layer: Layer) -> Combine:
    dim = layer.raw("Dim")
    letters = layer.in_type.matlab_format
    if isinstance(dim, str):
        if dim.upper() not in letters or letters.count(dim.upper()) > 1:
            raise LayerError(
                f"its Dim '{dim}' does not name one dimension of {letters} data."
            )
        return _concatenate(layer, letters.index(dim.upper()) + 1)
    return _concatenate(layer, int(layer.number("Dim")))
