"""Build layer records the way MATLAB saves them (field names as in real files).

Used by the tests and to write the project's own example .mat files. Field
sets follow recent releases unless a ``legacy`` flag asks for an older one
(2017–2019 files: ``Padding`` [v h], 4-D FullyConnected weights, ...).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from codegen.matfile import MatObject

NS = "nnet.cnn.layer."


def d(value: Any) -> np.ndarray:
    """A MATLAB double: always at least 2-D."""
    return np.atleast_2d(np.asarray(value, dtype=np.float64))


def learnable(value: np.ndarray | None) -> dict[str, Any]:
    v = np.zeros((0, 0)) if value is None else np.asarray(value, dtype=np.float32)
    return {"Version": d(2), "Value": v, "LearnRateFactor": d(1), "L2Factor": d(1)}


def layer(cls: str, name: str, version: float = 1, **fields: Any) -> MatObject:
    # MATLAB's default L2Factor is 0 for biases (BiasL2Factor), 1 for the rest
    for key, value in fields.items():
        if key.endswith("Bias") and isinstance(value, dict) and "L2Factor" in value:
            fields[key] = {**value, "L2Factor": d(0)}
    return MatObject(
        NS + cls, {"Version": d(version), "Name": name, **fields}, saveobj=True
    )


def plain_layer(cls: str, name: str, **fields: Any) -> MatObject:
    """Layers implemented as nnet.layer.Layer subclasses: no ``any`` struct."""
    return MatObject(
        NS + cls,
        {
            "Name": name,
            "Description": "",
            "Type": "",
            "nnet.layer.Layer.PrivateInputs": ["in"],
            "nnet.layer.Layer.PrivateOutputs": ["out"],
            "Version": d(1),
            **fields,
        },
    )


def series(layers: Sequence[MatObject]) -> MatObject:
    return MatObject(
        "SeriesNetwork", {"Version": d(1), "Layers": list(layers)}, saveobj=True
    )


# --------------------------------------------------------------------------
# inputs


def normalization(
    kind: str, size: Sequence[int], **stats: np.ndarray
) -> dict[str, Any] | np.ndarray:
    if kind == "none":
        return np.zeros((1, 0))
    struct: dict[str, Any] = {"Version": d(2), "Type": kind, "ImageSize": d(list(size))}
    for key, value in stats.items():
        struct[key] = (
            np.asarray(value, dtype=np.float32)
            if isinstance(value, np.ndarray)
            else d(value)
        )
    return struct


def image_input(
    name: str, size: Sequence[int], norm: str = "none", **stats: Any
) -> MatObject:
    return layer(
        "ImageInputLayer",
        name,
        version=5,
        InputSize=d(list(size)),
        Normalization=normalization(norm, size, **stats),
        Augmentations=np.zeros((1, 0)),
        NormalizationDimension="auto",
        SplitComplexInputs=np.array([[False]]),
    )


def feature_input(name: str, n: int, norm: str = "none", **stats: Any) -> MatObject:
    return layer(
        "FeatureInputLayer",
        name,
        version=2,
        InputSize=d(n),
        Normalization=normalization(norm, [n], **stats),
        NormalizationDimension="auto",
        SplitComplexInputs=np.array([[False]]),
    )


# --------------------------------------------------------------------------
# convolution and fully connected


def _padding_fields(padding: Any, legacy: bool) -> dict[str, Any]:
    if legacy:  # 2017: Padding [vertical horizontal], no PaddingMode
        return {"Padding": d(list(padding))}
    if padding == "same":
        return {"PaddingMode": "same", "PaddingSize": d([0, 0, 0, 0])}
    return {"PaddingMode": "manual", "PaddingSize": d(list(padding))}


def conv2d(
    name: str,
    weights: np.ndarray,
    bias: np.ndarray | None,
    stride: Sequence[int] = (1, 1),
    padding: Any = (0, 0, 0, 0),
    dilation: Sequence[int] = (1, 1),
    padding_value: Any = 0.0,
    num_filters: Sequence[int] | None = None,
    legacy: bool = False,
) -> MatObject:
    h, w = weights.shape[:2]
    filters = (
        list(num_filters)
        if num_filters
        else [weights.shape[3] if weights.ndim > 3 else 1]
    )
    fields: dict[str, Any] = {
        "FilterSize": d([h, w]),
        "NumChannels": d([weights.shape[2] if weights.ndim > 2 else 1] * len(filters)),
        "NumFilters": d(filters),
        "Stride": d(list(stride)),
        **_padding_fields(padding, legacy),
        "Weights": learnable(weights),
        "Bias": learnable(None if bias is None else np.reshape(bias, (1, 1, -1))),
    }
    if not legacy:
        fields["DilationFactor"] = d(list(dilation))
        fields["PaddingValue"] = (
            padding_value if isinstance(padding_value, str) else d(padding_value)
        )
    return layer("Convolution2DLayer", name, version=2 if legacy else 8, **fields)


def transposed_conv2d(
    name: str,
    weights: np.ndarray,
    bias: np.ndarray | None,
    stride: Sequence[int] = (1, 1),
    cropping: Any = (0, 0, 0, 0),
) -> MatObject:
    h, w, f, c = weights.shape
    fields: dict[str, Any] = {
        "FilterSize": d([h, w]),
        "NumChannels": d(c),
        "NumFilters": d(f),
        "Stride": d(list(stride)),
        "Weights": learnable(weights),
        "Bias": learnable(None if bias is None else np.reshape(bias, (1, 1, -1))),
    }
    if cropping == "same":
        fields.update(
            CroppingMode="same",
            CroppingSize=d([0, 0, 0, 0]),
            OutputSizeOffset=d([0, 0]),
        )
    else:
        fields.update(
            CroppingMode="manual",
            CroppingSize=d(list(cropping)),
            OutputSizeOffset=d([0, 0]),
        )
    return layer("TransposedConvolution2DLayer", name, version=2, **fields)


def fully_connected(
    name: str,
    weights: np.ndarray,
    bias: np.ndarray,
    input_size: Sequence[int] | None = None,
) -> MatObject:
    """``weights`` as saved: O×In (new) or H×W×C×O with ``input_size`` [H W C] (old)."""
    out = weights.shape[-1] if input_size is not None else weights.shape[0]
    if input_size is not None:
        return layer(
            "FullyConnectedLayer",
            name,
            version=2,
            InputSize=d(list(input_size)),
            OutputSize=d([1, 1, out]),
            Weights=learnable(weights),
            Bias=learnable(np.reshape(bias, (1, 1, -1))),
        )
    return layer(
        "FullyConnectedLayer",
        name,
        version=3,
        InputSize=d(weights.shape[1]),
        OutputSize=d(out),
        Weights=learnable(weights),
        Bias=learnable(np.reshape(bias, (-1, 1))),
    )


# --------------------------------------------------------------------------
# normalization


def batch_norm(
    name: str,
    mean: np.ndarray,
    var: np.ndarray,
    scale: np.ndarray,
    offset: np.ndarray,
    eps: float = 1e-5,
) -> MatObject:
    c = mean.size
    shape = (1, 1, c)
    return layer(
        "BatchNormalizationLayer",
        name,
        version=3,
        Epsilon=d(eps),
        NumChannels=d(c),
        ChannelDim=d(3),
        TrainedMean=np.reshape(mean, shape).astype(np.float32),
        TrainedVariance=np.reshape(var, shape).astype(np.float32),
        Offset=learnable(np.reshape(offset, shape)),
        Scale=learnable(np.reshape(scale, shape)),
    )


def cross_channel_norm(
    name: str, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 2.0
) -> MatObject:
    return layer(
        "CrossChannelNormalizationLayer",
        name,
        WindowChannelSize=d(size),
        Alpha=d(alpha),
        Beta=d(beta),
        K=d(k),
    )


# --------------------------------------------------------------------------
# activations


def relu(name: str) -> MatObject:
    return layer("ReLULayer", name)


def leaky_relu(name: str, scale: float = 0.01) -> MatObject:
    return layer("LeakyReLULayer", name, Scale=d(scale))


def clipped_relu(name: str, ceiling: float) -> MatObject:
    return layer("ClippedReLULayer", name, Ceiling=d(ceiling))


def elu(name: str, alpha: float = 1.0) -> MatObject:
    return plain_layer("ELULayer", name, Alpha=d(alpha))


def tanh(name: str) -> MatObject:
    return plain_layer("TanhLayer", name)


def sigmoid(name: str) -> MatObject:
    return plain_layer("SigmoidLayer", name)


def swish(name: str) -> MatObject:
    return plain_layer("SwishLayer", name)


def gelu(name: str, approximation: str = "none") -> MatObject:
    return plain_layer("GELULayer", name, Approximation=approximation)


def dropout(name: str, p: float = 0.5) -> MatObject:
    return layer("DropoutLayer", name, Probability=d(p))


def softmax(name: str) -> MatObject:
    return layer(
        "SoftmaxLayer",
        name,
        version=4,
        ChannelDim=d(3),
        VectorFormat=np.array([[False]]),
    )


# --------------------------------------------------------------------------
# pooling


def max_pool2d(
    name: str,
    pool: Sequence[int],
    stride: Sequence[int],
    padding: Any = (0, 0, 0, 0),
    legacy: bool = False,
) -> MatObject:
    fields = {
        "PoolSize": d(list(pool)),
        "Stride": d(list(stride)),
        **_padding_fields(padding, legacy),
    }
    if not legacy:
        fields["HasUnpoolingOutputs"] = np.array([[False]])
    return layer("MaxPooling2DLayer", name, version=1 if legacy else 3, **fields)


def avg_pool2d(
    name: str,
    pool: Sequence[int],
    stride: Sequence[int],
    padding: Any = (0, 0, 0, 0),
    padding_value: Any = 0.0,
) -> MatObject:
    value = padding_value if isinstance(padding_value, str) else d(padding_value)
    return layer(
        "AveragePooling2DLayer",
        name,
        version=3,
        PoolSize=d(list(pool)),
        Stride=d(list(stride)),
        PaddingValue=value,
        **_padding_fields(padding, False),
    )


def global_avg_pool2d(name: str) -> MatObject:
    return layer("GlobalAveragePooling2DLayer", name)


def global_max_pool2d(name: str) -> MatObject:
    return layer("GlobalMaxPooling2DLayer", name)


# --------------------------------------------------------------------------
# outputs


def classification(
    name: str, classes: Sequence[str], weights: Sequence[float] | None = None
) -> MatObject:
    return layer(
        "ClassificationOutputLayer",
        name,
        version=4,
        NumClasses=d(len(classes)),
        Categories=list(classes),
        ClassWeights=d(list(weights)).T if weights else np.zeros((0, 0)),
        ObservationDim=d(4),
    )


def pixel_classification(
    name: str, classes: Sequence[str], weights: Sequence[float] | None = None
) -> MatObject:
    return layer(
        "PixelClassificationLayer",
        name,
        version=3,
        Categories=list(classes),
        ClassWeights=d(list(weights)).T if weights else np.zeros((0, 0)),
        ChannelDim=d(3),
    )


def regression(name: str) -> MatObject:
    return layer(
        "RegressionOutputLayer",
        name,
        version=2,
        ResponseNames=["Response"],
        ObservationDim=d(4),
    )


# --------------------------------------------------------------------------
# graph containers and graph layers


def connections(pairs: Sequence[tuple[str, str]]) -> Any:
    import pandas as pd

    return pd.DataFrame(
        {"Source": [s for s, _ in pairs], "Destination": [t for _, t in pairs]}
    )


def dag(layers: Sequence[MatObject], pairs: Sequence[tuple[str, str]]) -> MatObject:
    return MatObject(
        "DAGNetwork",
        {"Version": d(1), "Layers": list(layers), "Connections": connections(pairs)},
        saveobj=True,
    )


def layer_graph(
    layers: Sequence[MatObject], pairs: Sequence[tuple[str, str]]
) -> MatObject:
    return MatObject(
        "nnet.cnn.LayerGraph",
        {"Version": d(1), "Layers": list(layers), "Connections": connections(pairs)},
        saveobj=True,
    )


def dlnetwork(
    layers: Sequence[MatObject],
    pairs: Sequence[tuple[str, str]],
    outputs: Sequence[str] = (),
) -> MatObject:
    fields: dict[str, Any] = {"Version": d(5), "LayerGraph": layer_graph(layers, pairs)}
    if outputs:
        fields["OutputNames"] = list(outputs)
    return MatObject("dlnetwork", fields, saveobj=True)


def chain_pairs(names: Sequence[str]) -> list[tuple[str, str]]:
    return list(itertools.pairwise(names))


def addition(name: str, n: int = 2) -> MatObject:
    return layer("AdditionLayer", name, NumInputs=d(n))


def multiplication(name: str, n: int = 2) -> MatObject:
    return layer("MultiplicationLayer", name, NumInputs=d(n))


def depth_concatenation(name: str, n: int = 2) -> MatObject:
    return layer("DepthConcatenationLayer", name, NumInputs=d(n))


def concatenation(name: str, dim: int, n: int = 2) -> MatObject:
    return layer("ConcatenationLayer", name, Dim=d(dim), NumInputs=d(n))


def crop2d(name: str, location: Any = "auto") -> MatObject:
    mode = "centercrop" if location == "auto" else "custom"
    return layer(
        "Crop2DLayer",
        name,
        Location=location if isinstance(location, str) else d(list(location)),
        Mode=mode,
    )


def resize(
    name: str,
    nd: int = 2,
    scale: Any = None,
    output_size: Any = None,
    reference: bool = False,
    method: str = "nearest",
    transform: str = "half-pixel",
    rounding: str = "round",
) -> MatObject:
    return plain_layer(
        f"Resize{nd}DLayer",
        name,
        Scale=(
            d(list(np.broadcast_to(scale, (nd,))))
            if scale is not None
            else np.zeros((0, 0))
        ),
        OutputSize=(
            d(list(output_size)) if output_size is not None else np.zeros((0, 0))
        ),
        EnableReferenceInput=np.array([[reference]]),
        Method=method,
        GeometricTransformMode=transform,
        NearestRoundingMode=rounding,
    )


def max_pool_unpooling(
    name: str, pool: Sequence[int], stride: Sequence[int]
) -> MatObject:
    fields = {
        "PoolSize": d(list(pool)),
        "Stride": d(list(stride)),
        **_padding_fields((0, 0, 0, 0), False),
    }
    fields["HasUnpoolingOutputs"] = np.array([[True]])
    return layer("MaxPooling2DLayer", name, version=3, **fields)


def max_unpool2d(name: str) -> MatObject:
    return layer("MaxUnpooling2DLayer", name)


def grouped_conv2d(
    name: str,
    weights: np.ndarray,
    bias: np.ndarray,
    stride: Sequence[int] = (1, 1),
    padding: Any = (0, 0, 0, 0),
    channel_wise: bool = False,
) -> MatObject:
    h, w, cg, fg, g = weights.shape
    return layer(
        "GroupedConvolution2DLayer",
        name,
        version=3,
        FilterSize=d([h, w]),
        NumChannelsPerGroup=d(cg),
        NumFiltersPerGroup=d(fg),
        NumGroups="channel-wise" if channel_wise else d(g),
        Stride=d(list(stride)),
        DilationFactor=d([1, 1]),
        **_padding_fields(padding, False),
        PaddingValue=d(0),
        Weights=learnable(weights),
        Bias=learnable(np.reshape(bias, (1, 1, fg, g), order="F")),
    )


def image3d_input(
    name: str, size: Sequence[int], norm: str = "none", **stats: Any
) -> MatObject:
    return layer(
        "Image3DInputLayer",
        name,
        version=2,
        InputSize=d(list(size)),
        Normalization=normalization(norm, size, **stats),
        NormalizationDimension="auto",
    )


def input_layer(name: str, size: Sequence[float], fmt: str) -> MatObject:
    return layer("InputLayer", name, InputSize=d(list(size)), InputFormat=fmt)


def conv3d(
    name: str,
    weights: np.ndarray,
    bias: np.ndarray,
    stride=(1, 1, 1),
    padding: Any = (0,) * 6,
) -> MatObject:
    k = weights.shape[:3]
    pad = (
        {"PaddingMode": "same", "PaddingSize": d([0] * 6)}
        if padding == "same"
        else {"PaddingMode": "manual", "PaddingSize": d(list(padding))}
    )
    return layer(
        "Convolution3DLayer",
        name,
        version=2,
        FilterSize=d(list(k)),
        NumChannels=d(weights.shape[3]),
        NumFilters=d(weights.shape[4] if weights.ndim > 4 else 1),
        Stride=d(list(stride)),
        DilationFactor=d([1, 1, 1]),
        **pad,
        PaddingValue=d(0),
        Weights=learnable(weights),
        Bias=learnable(np.reshape(bias, (1, 1, 1, -1))),
    )


def transposed_conv3d(
    name: str,
    weights: np.ndarray,
    bias: np.ndarray,
    stride=(1, 1, 1),
    cropping: Any = (0,) * 6,
) -> MatObject:
    k = weights.shape[:3]
    crop = (
        {"CroppingMode": "same", "CroppingSize": d([0] * 6)}
        if cropping == "same"
        else {"CroppingMode": "manual", "CroppingSize": d(list(cropping))}
    )
    return layer(
        "TransposedConvolution3DLayer",
        name,
        version=2,
        FilterSize=d(list(k)),
        NumChannels=d(weights.shape[4]),
        NumFilters=d(weights.shape[3]),
        Stride=d(list(stride)),
        **crop,
        Weights=learnable(weights),
        Bias=learnable(np.reshape(bias, (1, 1, 1, -1))),
    )


def pool3d(
    kind: str,
    name: str,
    pool: Sequence[int],
    stride: Sequence[int],
    padding: Any = (0,) * 6,
) -> MatObject:
    pad = (
        {"PaddingMode": "same", "PaddingSize": d([0] * 6)}
        if padding == "same"
        else {"PaddingMode": "manual", "PaddingSize": d(list(padding))}
    )
    return layer(
        f"{kind}Pooling3DLayer",
        name,
        version=3,
        PoolSize=d(list(pool)),
        Stride=d(list(stride)),
        **pad,
    )


def global_pool3d(kind: str, name: str) -> MatObject:
    return layer(f"Global{kind}Pooling3DLayer", name)


def _norm_fields(c: int, seed: int) -> dict[str, Any]:
    g = np.random.default_rng(seed)
    return {
        "Epsilon": d(1e-5),
        "NumChannels": d(c),
        "Scale": learnable(g.uniform(0.5, 1.5, (c, 1))),
        "Offset": learnable(g.standard_normal((c, 1))),
    }


def layer_norm(
    name: str, c: int, operation: str | None = None, seed: int = 0
) -> MatObject:
    fields = _norm_fields(c, seed)
    if operation:
        fields["OperationDimension"] = operation
    return layer("LayerNormalizationLayer", name, **fields)


def group_norm(name: str, c: int, groups: Any, seed: int = 0) -> MatObject:
    return layer(
        "GroupNormalizationLayer",
        name,
        NumGroups=groups if isinstance(groups, str) else d(groups),
        **_norm_fields(c, seed),
    )


def instance_norm(name: str, c: int, seed: int = 0) -> MatObject:
    return layer("InstanceNormalizationLayer", name, **_norm_fields(c, seed))


def flatten(name: str) -> MatObject:
    return layer("FlattenLayer", name)


def yolov2_transform(name: str, anchors: int) -> MatObject:
    return plain_layer("YOLOv2TransformLayer", name, NumAnchorBoxes=d(anchors))


def function_layer(
    name: str,
    text: str,
    n_inputs: int = 1,
    captured: dict[str, np.ndarray] | None = None,
) -> MatObject:
    """``captured``: the variables the function handle's workspace holds."""
    handle: list[Any] = [np.array([[0xDD000000]], dtype=np.uint32)]
    if captured:
        handle.append(
            {
                "function_handle": {
                    "function": text,
                    "type": "anonymous",
                    "workspace": dict(captured),
                }
            }
        )
    fields = {
        "PredictFcn": handle,
        "Formattable": np.array([[False]]),
        "Acceleratable": np.array([[False]]),
        "Description": text,
        "Type": "Function",
        "nnet.layer.Layer.PrivateInputs": (
            [f"in{i + 1}" for i in range(n_inputs)] if n_inputs > 1 else ["in"]
        ),
    }
    obj = plain_layer("FunctionLayer", name)
    return MatObject(obj.classname, {**obj.fields, **fields})


# --------------------------------------------------------------------------
# sequences


def sequence_input(
    name: str, size: Any, norm: str = "none", min_length: int = 1, **stats: Any
) -> MatObject:
    dims = [size] if np.isscalar(size) else list(size)
    return layer(
        "SequenceInputLayer",
        name,
        version=5,
        InputSize=d(dims),
        Normalization=normalization(norm, dims, **stats),
        NormalizationDimension="auto",
        MinLength=d(min_length),
        SplitComplexInputs=np.array([[False]]),
    )


def _state(value: np.ndarray) -> dict[str, Any]:
    return {
        "Value": np.asarray(value, np.float32).reshape(-1, 1),
        "Remember": np.array([[True]]),
    }


def recurrent(
    cls: str,
    name: str,
    input_size: int,
    hidden: int,
    seed: int = 0,
    last: bool = False,
    legacy: bool = False,
    state: str = "tanh",
    gate: str = "sigmoid",
    reset: str | None = None,
    h0: np.ndarray | None = None,
    c0: np.ndarray | None = None,
    state_inputs: bool = False,
    state_outputs: bool = False,
    projector: tuple[int, int] | None = None,
) -> MatObject:
    """lstmLayer, bilstmLayer, gruLayer and projected variants, as saved."""
    g = np.random.default_rng(seed)
    gates = 3 if "GRU" in cls else 4
    dirs = 2 if cls.startswith("Bi") else 1
    rows = dirs * gates * hidden
    n_bias = rows * (2 if reset == "recurrent-bias-after-multiplication" else 1)
    in_cols, rec_cols = input_size, hidden
    fields: dict[str, Any] = {}
    if projector:
        in_cols, rec_cols = projector
        fields.update(
            InputProjectorSize=d(in_cols),
            OutputProjectorSize=d(rec_cols),
            InputProjector=learnable(g.standard_normal((input_size, in_cols)) * 0.4),
            OutputProjector=learnable(g.standard_normal((hidden, rec_cols)) * 0.4),
        )
    fields.update(
        InputSize=d(input_size),
        NumHiddenUnits=d(hidden),
        StateActivationFunction=state,
        GateActivationFunction=gate,
        InputWeights=learnable(g.standard_normal((rows, in_cols)) * 0.4),
        RecurrentWeights=learnable(g.standard_normal((rows, rec_cols)) * 0.4),
        Bias=learnable(g.standard_normal((n_bias, 1)) * 0.4),
        HiddenState=_state(np.zeros(dirs * hidden) if h0 is None else h0),
    )
    if gates == 4:
        fields["CellState"] = _state(np.zeros(dirs * hidden) if c0 is None else c0)
    if reset:
        fields["ResetGateMode"] = reset
    if legacy:
        fields["ReturnSequence"] = np.array([[not last]])
    else:
        fields["OutputMode"] = "last" if last else "sequence"
        fields["HasStateInputs"] = np.array([[state_inputs]])
        fields["HasStateOutputs"] = np.array([[state_outputs]])
    return layer(f"{cls}Layer", name, version=4, **fields)


def conv1d(
    name: str,
    weights: np.ndarray,
    bias: np.ndarray,
    stride: int = 1,
    dilation: int = 1,
    padding: Any = (0, 0),
) -> MatObject:
    k, c, f = weights.shape
    mode = padding if isinstance(padding, str) else "manual"
    return layer(
        "Convolution1DLayer",
        name,
        FilterSize=d(k),
        NumChannels=d(c),
        NumFilters=d(f),
        Stride=d(stride),
        DilationFactor=d(dilation),
        PaddingMode=mode,
        PaddingSize=d([0, 0] if isinstance(padding, str) else list(padding)),
        PaddingValue=d(0),
        Weights=learnable(weights),
        Bias=learnable(np.reshape(bias, (1, -1))),
    )


def pool1d(
    kind: str, name: str, pool: int, stride: int, padding: Any = (0, 0)
) -> MatObject:
    mode = padding if isinstance(padding, str) else "manual"
    return layer(
        f"{kind}Pooling1DLayer",
        name,
        PoolSize=d(pool),
        Stride=d(stride),
        PaddingMode=mode,
        PaddingSize=d([0, 0] if isinstance(padding, str) else list(padding)),
    )


def global_pool1d(kind: str, name: str) -> MatObject:
    return layer(f"Global{kind}Pooling1DLayer", name)


def self_attention(
    name: str,
    c: int,
    heads: int,
    key: int,
    value: int | None = None,
    out: int | None = None,
    mask: Any = "none",
    seed: int = 0,
    padding_mask: bool = False,
    scores: bool = False,
) -> MatObject:
    g = np.random.default_rng(seed)
    value = value or key
    out = out or c

    def r(*shape):
        return g.standard_normal(shape) * 0.5

    return layer(
        "SelfAttentionLayer",
        name,
        InputSize=d(c),
        NumKeyChannels=d(key),
        NumValueChannels=d(value),
        NumHeads=d(heads),
        AttentionMask=(
            mask if isinstance(mask, str) else np.asarray(mask, dtype=np.float64)
        ),
        DropoutProbability=d(0),
        HasPaddingMaskInput=np.array([[padding_mask]]),
        HasScoresOutput=np.array([[scores]]),
        OutputSize=d(out),
        QueryWeights=learnable(r(key, c)),
        KeyWeights=learnable(r(key, c)),
        ValueWeights=learnable(r(value, c)),
        OutputWeights=learnable(r(out, value)),
        QueryBias=learnable(r(key, 1)),
        KeyBias=learnable(r(key, 1)),
        ValueBias=learnable(r(value, 1)),
        OutputBias=learnable(r(out, 1)),
    )


def position_embedding(
    name: str, size: int, positions: int, seed: int = 0
) -> MatObject:
    g = np.random.default_rng(seed)
    return plain_layer(
        "PositionEmbeddingLayer",
        name,
        OutputSize=d(size),
        MaxPosition=d(positions),
        PositionDimension="auto",
        Weights=g.standard_normal((size, positions)).astype(np.float32),
    )


def indexing1d(name: str, index: str = "last") -> MatObject:
    return plain_layer(
        "Indexing1DLayer", name, Index=index, HasPaddingMaskInput=np.array([[False]])
    )


def word_embedding(name: str, dim: int, words: int, seed: int = 0) -> MatObject:
    g = np.random.default_rng(seed)
    return layer(
        "WordEmbeddingLayer",
        name,
        Dimension=d(dim),
        NumWords=d(words),
        OOVMode="map-to-last",
        Weights=learnable(g.standard_normal((dim, words + 1))),
    )


def embedding_concatenation(name: str, c: int, seed: int = 0) -> MatObject:
    g = np.random.default_rng(seed)
    return plain_layer(
        "EmbeddingConcatenationLayer",
        name,
        Weights=learnable(g.standard_normal((c, 1))),
    )


def sequence_folding(name: str) -> MatObject:
    return layer("SequenceFoldingLayer", name)


def sequence_unfolding(name: str) -> MatObject:
    return layer("SequenceUnfoldingLayer", name)
