"""Structure-aware mutants: valid MAT files whose network records lie.

They start from the project's example networks (tests/examples.py) plus an
untrained layer graph, change one thing in the record tree and are written
with the project's own MAT writer, so mat-io reads them back faithfully and
the mutation reaches the graph builder, the layer handlers and the check.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import matlab as M
import numpy as np

from codegen.matfile import MatObject
from examples import EXAMPLES

NAN = float("nan")
INF = float("inf")
# Replacements for one field: absurd sizes, wrong kinds, empties.
HOSTILE: tuple[Any, ...] = (
    M.d(0),
    M.d(-1),
    M.d(0.5),
    M.d(1e9),
    M.d(2.0**31),
    M.d(2.0**63),
    M.d(NAN),
    M.d(INF),
    M.d(-INF),
    M.d([1e9, 1e9]),
    M.d([1e9, 1e9, 1e9]),
    M.d([3, 3, 3, 3, 3]),
    np.zeros((0, 0)),
    "abc",
    "",
    ["a", "b"],
    {"Value": M.d(1)},
    np.array([[True]]),
    np.array([[1, 2]], dtype=np.int8),
    np.array([[1 + 2j]]),
)


def untrained_graph() -> dict[str, Any]:
    """An untrained LayerGraph: every learnable is empty, sizes come from fields."""
    empty = M.learnable(None)
    layers = [
        M.image_input("in", (8, 8, 3)),
        M.layer(
            "Convolution2DLayer",
            "conv",
            version=8,
            FilterSize=M.d([3, 3]),
            NumChannels="auto",
            NumFilters=M.d(4),
            Stride=M.d([1, 1]),
            DilationFactor=M.d([1, 1]),
            PaddingMode="same",
            PaddingSize=M.d([0, 0, 0, 0]),
            PaddingValue=M.d(0),
            Weights=empty,
            Bias=empty,
        ),
        M.layer(
            "BatchNormalizationLayer",
            "bn",
            version=3,
            Epsilon=M.d(1e-5),
            NumChannels="auto",
            TrainedMean=np.zeros((0, 0)),
            TrainedVariance=np.zeros((0, 0)),
            Offset=empty,
            Scale=empty,
        ),
        M.relu("relu"),
        M.dropout("drop", 0.3),
        M.layer(
            "FullyConnectedLayer",
            "fc",
            version=3,
            InputSize="auto",
            OutputSize=M.d(5),
            Weights=empty,
            Bias=empty,
        ),
        M.softmax("sm"),
        M.classification("out", ["a", "b", "c", "d", "e"]),
    ]
    names = [layer.fields["Name"] for layer in layers]
    return {"lgraph": M.layer_graph(layers, M.chain_pairs(names))}


BASES: dict[str, Callable[[], dict[str, Any]]] = {
    **{name: fn for name, (fn, _) in EXAMPLES.items()},
    "untrained_graph": untrained_graph,
}


# --------------------------------------------------------------------------
# navigating a network record


def _layers_of(net: Any) -> list[MatObject]:
    if isinstance(net, list):
        return net
    if net.classname == "dlnetwork":
        return net.fields["LayerGraph"].fields["Layers"]
    return net.fields["Layers"]


def _holder(net: Any) -> MatObject | None:
    """The record whose fields hold Layers and Connections."""
    if isinstance(net, list) or net.classname == "SeriesNetwork":
        return None
    return net.fields["LayerGraph"] if net.classname == "dlnetwork" else net


def _with_fields(obj: MatObject, **changes: Any) -> MatObject:
    return dataclasses.replace(obj, fields={**obj.fields, **changes})


def _set_layers(net: Any, layers: list[MatObject]) -> Any:
    if isinstance(net, list):
        return layers
    if net.classname == "dlnetwork":
        graph = _with_fields(net.fields["LayerGraph"], Layers=layers)
        return _with_fields(net, LayerGraph=graph)
    return _with_fields(net, Layers=layers)


def _set_pairs(net: Any, pairs: Any) -> Any:
    holder = _holder(net)
    if holder is None:
        return net
    changed = _with_fields(holder, Connections=pairs)
    if net.classname == "dlnetwork":
        return _with_fields(net, LayerGraph=changed)
    return changed


def _pairs(net: Any) -> list[tuple[str, str]]:
    holder = _holder(net)
    if holder is None:
        return []
    table = holder.fields["Connections"]
    return list(zip(table["Source"], table["Destination"], strict=True))


# --------------------------------------------------------------------------
# mutations: each takes the network and three integers


def field_value(net: Any, a: int, b: int, c: int) -> tuple[Any, str]:
    layers = list(_layers_of(net))
    i = a % len(layers)
    keys = sorted(k for k in layers[i].fields if k != "Version")
    key = keys[b % len(keys)]
    value = HOSTILE[c % len(HOSTILE)]
    layers[i] = _with_fields(layers[i], **{key: value})
    return _set_layers(net, layers), f"layer {i}.{key} = {_show(value)}"


def learnable_value(net: Any, a: int, b: int, c: int) -> tuple[Any, str]:
    """NaN/Inf weights, wrong shapes, wrong dtypes, text for a weight."""
    layers = list(_layers_of(net))
    spots = [
        (i, k)
        for i, layer in enumerate(layers)
        for k, v in layer.fields.items()
        if (isinstance(v, dict) and "Value" in v)
        or k in ("TrainedMean", "TrainedVariance")
    ]
    if not spots:
        return field_value(net, a, b, c)
    i, key = spots[a % len(spots)]
    old = layers[i].fields[key]
    arr = np.asarray(old["Value"] if isinstance(old, dict) else old, dtype=np.float32)
    variants: list[tuple[str, Any]] = [
        ("all NaN", np.full(arr.shape, NAN, np.float32)),
        ("one Inf", np.where(np.arange(arr.size).reshape(arr.shape) == 0, INF, arr)),
        ("transposed", arr.T.copy()),
        ("one value short", arr.ravel()[:-1].copy()),
        ("one value more", np.append(arr.ravel(), 1).astype(np.float32)),
        ("int8", arr.astype(np.int8)),
        ("logical", arr > 0),
        ("text", "weights"),
        ("a cell", [arr]),
        ("empty", np.zeros((0, 0), np.float32)),
        ("float64 1e300", np.full(arr.shape, 1e300)),
    ]
    what, new = variants[b % len(variants)]
    value = {**old, "Value": new} if isinstance(old, dict) else new
    layers[i] = _with_fields(layers[i], **{key: value})
    return _set_layers(net, layers), f"layer {i}.{key} {what}"


def delete_field(net: Any, a: int, b: int, c: int) -> tuple[Any, str]:
    layers = list(_layers_of(net))
    i = a % len(layers)
    keys = sorted(layers[i].fields)
    key = keys[b % len(keys)]
    fields = {k: v for k, v in layers[i].fields.items() if k != key}
    layers[i] = dataclasses.replace(layers[i], fields=fields)
    return _set_layers(net, layers), f"layer {i} without {key}"


def name_value(net: Any, a: int, b: int, c: int) -> tuple[Any, str]:
    """Names that are numbers, duplicates, empty, or contain a slash."""
    layers = list(_layers_of(net))
    i, j = a % len(layers), b % len(layers)
    choices = [
        M.d([1e9, 1e9]),
        layers[j].fields.get("Name", ""),
        "",
        "a/b",
        ["x", "y"],
        "x" * 10_000,
    ]
    value = choices[c % len(choices)]
    layers[i] = _with_fields(layers[i], Name=value)
    return _set_layers(net, layers), f"layer {i}.Name = {_show(value)}"


def layer_order(net: Any, a: int, b: int, c: int) -> tuple[Any, str]:
    layers = list(_layers_of(net))
    how = a % 4
    if how == 0:
        return _set_layers(net, layers[::-1]), "layers reversed"
    i = b % len(layers)
    if how == 1:
        return (
            _set_layers(net, layers[:i] + layers[i + 1 :] or layers),
            f"layer {i} removed",
        )
    if how == 2:
        return (
            _set_layers(net, [*layers[: i + 1], layers[i], *layers[i + 1 :]]),
            f"layer {i} duplicated",
        )
    return _set_layers(net, [layers[i]]), f"only layer {i}"


def connections(net: Any, a: int, b: int, c: int) -> tuple[Any, str]:
    pairs = _pairs(net)
    if not pairs:
        return layer_order(net, a, b, c)
    names = [str(layer.fields.get("Name", "")) for layer in _layers_of(net)]
    how = a % 8
    k = b % len(pairs)
    src, dst = pairs[k]
    if how == 0:
        pairs = [*pairs, (src, "nowhere")]
        what = "dangling destination"
    elif how == 1:
        pairs = [*pairs, (dst.partition("/")[0], names[0])]
        what = "edge back to the first layer (cycle)"
    elif how == 2:
        pairs = [*pairs, pairs[k]]
        what = f"edge {k} duplicated"
    elif how == 3:
        pairs = [*pairs[:k], *pairs[k + 1 :]]
        what = f"edge {k} removed"
    elif how == 4:
        pairs = [
            (s + "/out7", d) if i == k else (s, d) for i, (s, d) in enumerate(pairs)
        ]
        what = f"edge {k} from a missing output port"
    elif how == 5:
        pairs = [
            (s, d.partition("/")[0] + "/in9") if i == k else (s, d)
            for i, (s, d) in enumerate(pairs)
        ]
        what = f"edge {k} into a missing input port"
    elif how == 6:
        table = {
            "Source": [s for s, _ in pairs] + ["extra"],
            "Destination": [d for _, d in pairs],
        }
        return _set_pairs(net, table), "Source longer than Destination"
    else:
        pairs = [*pairs, (dst, dst)]
        what = "self-loop"
    return _set_pairs(net, M.connections(pairs)), what


def output_names(net: Any, a: int, b: int, c: int) -> tuple[Any, str]:
    if isinstance(net, list) or net.classname != "dlnetwork":
        return connections(net, a, b, c)
    names = [str(layer.fields.get("Name", "")) for layer in _layers_of(net)]
    choices = [
        ["missing"],
        [names[a % len(names)] + "/out7"],
        [],
        M.d([1, 2]),
        [names[0]],
    ]
    value = choices[b % len(choices)]
    return _with_fields(net, OutputNames=value), f"OutputNames = {_show(value)}"


def categories(net: Any, a: int, b: int, c: int) -> tuple[Any, str]:
    layers = list(_layers_of(net))
    spots = [
        i
        for i, layer in enumerate(layers)
        if "Categories" in layer.fields or "ClassNames" in layer.fields
    ]
    if not spots:
        return field_value(net, a, b, c)
    i = spots[a % len(spots)]
    key = "Categories" if "Categories" in layers[i].fields else "ClassNames"
    choices = [M.d([1, 2, 3]), "one", [], ["a", "a"], [M.d(1), "b"], np.zeros((0, 0))]
    value = choices[b % len(choices)]
    layers[i] = _with_fields(layers[i], **{key: value})
    return _set_layers(net, layers), f"layer {i}.{key} = {_show(value)}"


def long_chain(net: Any, a: int, b: int, c: int) -> tuple[Any, str]:
    """A feature input and a chain of ReLU layers: 300 converts, 6,000 and
    20,000 exceed mat2torch's layer cap (codegen.graph.MAX_LAYERS). (10^5
    layers are refused the same way but take mat-io ~30 s to read: a long run
    spent most of its time there.)"""
    n = (300, 6_000, 20_000)[a % 3]
    layers = [M.feature_input("in", 3)] + [M.relu(f"r{i}") for i in range(n)]
    return layers, f"a chain of {n} ReLU layers"


MUTATIONS: dict[str, Callable[[Any, int, int, int], tuple[Any, str]]] = {
    "field_value": field_value,
    "learnable_value": learnable_value,
    "delete_field": delete_field,
    "name_value": name_value,
    "layer_order": layer_order,
    "connections": connections,
    "output_names": output_names,
    "categories": categories,
    "long_chain": long_chain,
}


def mutate(
    base: str, mutation: str, a: int, b: int, c: int
) -> tuple[dict[str, Any], str]:
    """The variables of a mutated network file and a line saying what changed."""
    variables = BASES[base]()
    (name, net), *_ = variables.items()
    changed, what = MUTATIONS[mutation](net, a, b, c)
    return {name: changed}, f"{base}: {what}"


def _show(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"{value.dtype}{list(value.shape)} {value.ravel()[:3].tolist()}"
    return repr(value)[:40]
