"""Sequence utilities: indexing, embeddings, folding."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

from codegen.ir import Call, ModuleNode, Node, Relayout, TensorType
from codegen.layers import (
    Layer,
    LayerError,
    Untranslatable,
    mat_reshape,
    register,
    to_time_first,
)
from codegen.render import doc


@dataclass(frozen=True, kw_only=True, eq=False)
class Index(Node):
    template: ClassVar[str] = "index"
    subscript: str  # e.g. "[:, -1]", written by the parser


@register("nnet.cnn.layer.Indexing1DLayer", torch="x[:, -1] / x[:, 0] over time")
def indexing1d(layer: Layer) -> Index:
    t = layer.in_type
    if layer.flag("HasPaddingMaskInput"):
        raise LayerError(
            "it takes a padding mask, which is not supported.",
            hint="Run unpadded sequences one at a time instead.",
        )
    index = layer.text("Index", "first").lower()
    if index not in ("first", "last"):
        raise LayerError(f"its Index '{index}' is not known.")
    position = "-1" if index == "last" else "0"
    if t.format == "CT":
        subscript = f"[:, :, {position}]" if t.time_last else f"[:, {position}]"
    elif t.format == "SC":
        subscript = f"[:, :, {position}]"
    else:
        raise LayerError(f"it indexes sequences or 1-D images, not {t.format} data.")
    return Index(
        **layer.common(),
        subscript=subscript,
        out_types=(TensorType(channels=t.channels),),
    )


@dataclass(frozen=True, kw_only=True, eq=False)
class PositionEmbedding(ModuleNode):
    """The learned embedding of positions 1..T; the input only gives T."""

    template: ClassVar[str] = "position_embedding"
    axis: int  # the torch axis that counts the positions
    spatial: bool = False  # 1-D images: output N×D×L

    def hookable(self) -> bool:
        return False  # its module's output is not the layer's output


@register(
    "nnet.cnn.layer.PositionEmbeddingLayer",
    torch="nn.Embedding table, rows 0..T-1 broadcast over the batch",
)
def position_embedding(layer: Layer) -> PositionEmbedding:
    t = layer.in_type
    size = int(layer.number("OutputSize"))
    positions = int(layer.number("MaxPosition"))
    where = layer.text("PositionDimension", "auto").lower()
    weights = layer.learnable("Weights")
    params = {}
    if weights is not None:
        params["weight"] = mat_reshape(weights, (size, positions), "Weights").T
    call = Call("nn.Embedding", (positions, size))
    if t.format == "CT" and where in ("auto", "temporal"):
        note = f"Sequences can be at most {positions} steps long (MaxPosition of {doc(layer.name)})."
        return PositionEmbedding(
            **layer.common(),
            module=call,
            params=params,
            axis=2 if t.time_last else 1,
            max_steps=positions,
            notes=(note,),
            out_types=(TensorType(channels=size, time=True),),
        )
    if t.format == "SC" and where in ("auto", "spatial"):
        return PositionEmbedding(
            **layer.common(),
            module=call,
            params=params,
            axis=2,
            spatial=True,
            out_types=(TensorType(spatial=t.spatial, channels=size),),
        )
    raise LayerError(
        f"position embeddings along '{where}' of {t.format} data are not supported."
    )


@register(
    "nnet.cnn.layer.SinusoidalPositionEncodingLayer",
    torch="a stub to write by hand: formula not verified",
)
def sinusoidal_position_encoding(layer: Layer) -> Node:
    t = layer.in_type
    size = int(layer.number("OutputSize", t.channels))
    raise Untranslatable(
        "its exact encoding (sine/cosine order, first position, base) is not "
        "documented in the sources mat2torch was built from, and a guess could "
        "be silently wrong.",
        hint="Replace it by a positionEmbeddingLayer, or add the encoding by hand in "
        "the generated forward and check it against MATLAB's activations.",
        out_types=(dataclasses.replace(t, channels=size, time_last=False),),
    )


@dataclass(frozen=True, kw_only=True, eq=False)
class WordEmbedding(ModuleNode):
    template: ClassVar[str] = "word_embedding"
    words: int
    map_to_last: bool = True


@register(
    "nnet.cnn.layer.WordEmbeddingLayer",
    torch="nn.Embedding on 1-based word indices (out-of-vocabulary → last row)",
)
def word_embedding(layer: Layer) -> WordEmbedding:
    t = layer.in_type
    if t.format != "CT" or t.channels != 1:
        raise LayerError(f"it takes sequences of word indices (1×T), not {t.matlab}.")
    dim = int(layer.number("Dimension"))
    words = int(layer.number("NumWords"))
    map_to_last = layer.text("OOVMode", "map-to-last").lower() == "map-to-last"
    rows = words + 1 if map_to_last else words
    weights = layer.learnable("Weights")
    params = {}
    if weights is not None:
        params["weight"] = mat_reshape(weights, (dim, rows), "Weights").T
    return WordEmbedding(
        **layer.common(),
        module=Call("nn.Embedding", (rows, dim)),
        params=params,
        words=words,
        map_to_last=map_to_last,
        out_types=(TensorType(channels=dim, time=True),),
    )


@dataclass(frozen=True, kw_only=True, eq=False)
class Prepend(ModuleNode):
    template: ClassVar[str] = "prepend"
    pre: Relayout = Relayout.NONE


@register(
    "nnet.cnn.layer.EmbeddingConcatenationLayer",
    torch="EmbeddingConcatenation helper: a learned vector before the first step",
)
def embedding_concatenation(layer: Layer) -> Prepend:
    t = layer.in_type
    if t.format != "CT":
        raise LayerError(f"it extends sequences, not {t.format} data.")
    weights = layer.learnable("Weights")
    params = {}
    if weights is not None:
        params["weight"] = mat_reshape(weights, (t.channels,), "Weights")
    return Prepend(
        **layer.common(),
        module=Call("EmbeddingConcatenation", (t.channels,)),
        params=params,
        pre=to_time_first(t),
        helpers=("embedding_concatenation",),
        out_types=(TensorType(channels=t.channels, time=True),),
    )


@dataclass(frozen=True, kw_only=True, eq=False)
class Fold(Node):
    template: ClassVar[str] = "fold"
    unfold: bool = False


@register(
    "nnet.cnn.layer.SequenceFoldingLayer",
    torch="x.flatten(0, 1): time steps become batch elements",
)
def sequence_folding(layer: Layer) -> Fold:
    t = layer.in_type
    if not t.time or not t.spatial:
        raise LayerError(f"it folds image sequences, not {t.format} data.")
    folded = TensorType(spatial=t.spatial, channels=t.channels)
    return Fold(
        **layer.common(),
        port_names=("out", "miniBatchSize"),
        out_types=(folded, TensorType(channels=1)),
    )


@register(
    "nnet.cnn.layer.SequenceUnfoldingLayer",
    torch="x.unflatten(0, (N, -1)): batch elements back to time steps",
)
def sequence_unfolding(layer: Layer) -> Fold:
    if len(layer.inputs) != 2 or not isinstance(layer.sources[1], Fold):
        raise LayerError(
            "its 'miniBatchSize' input must come from a sequenceFoldingLayer."
        )
    t = layer.in_type
    if t.time:
        raise LayerError(
            f"it unfolds batches of images or features, not {t.format} data."
        )
    out = TensorType(spatial=t.spatial, channels=t.channels, time=True)
    return Fold(**layer.common(), unfold=True, out_types=(out,))
