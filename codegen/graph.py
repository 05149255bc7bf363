"""From a MATLAB network record to a layer graph in a stable topological order."""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Any

import numpy as np

from codegen.diagnostics import ConversionError
from codegen.ir import Port
from codegen.matfile import DETECTOR_CLASSES, NETWORK_CLASSES, MatObject
from codegen.naming import fallback_name

# Far beyond MATLAB's largest pretrained networks; a file claiming more is
# damaged, and generating and formatting its code would take hours.
MAX_LAYERS = 5_000
_RESAVE = (
    "Save the network again in MATLAB (save('net.mat','net')) and convert the new file."
)

# Named ports of multi-input/multi-output layers, by position.
NAMED_PORTS = {
    "indices": 1,
    "size": 2,
    "hidden": 1,
    "cell": 2,
    "mask": 1,
    "scores": 1,
    "ref": 1,
    "miniBatchSize": 1,
}


@dataclass(frozen=True)
class LayerGraph:
    """Layers (MATLAB order, names made unique) and their connections."""

    matlab_class: str
    layers: tuple[MatObject, ...]
    names: tuple[str, ...]
    inputs: dict[str, tuple[Port, ...]]  # per layer name, by input index
    output_names: tuple[str, ...]  # dlnetwork OutputNames, if saved
    order: tuple[int, ...]  # topological, ties by MATLAB order
    container: MatObject | None = None  # the detector holding the network

    def record(self, name: str) -> MatObject:
        return self.layers[self.names.index(name)]


def build(value: Any, what: str) -> LayerGraph:
    """Layers and connections of a saved network, LayerGraph or layer array."""
    from codegen import matconvnet  # MatConvNet structs (it imports this module)

    if (found := matconvnet.build(value, what)) is not None:
        return found
    if is_branched_struct(value):
        return _branched(value, what)
    matlab_class, layers, connections, outputs = _unpack(value, what)
    if not layers:
        raise ConversionError(f"{what} holds no layers.")
    if len(layers) > MAX_LAYERS:
        raise ConversionError(
            f"{what} has {len(layers):,} layers; mat2torch converts networks of up "
            f"to {MAX_LAYERS:,} (MATLAB's largest pretrained networks have about "
            "1,250), so the file is damaged or not a trained network.",
            hint="Nothing was written.",
        )
    names = _names(layers, what)
    if connections is None:  # a chain
        inputs: dict[str, tuple[Port, ...]] = {
            names[i]: ((Port(layer=names[i - 1]),) if i else ())
            for i in range(len(names))
        }
    else:
        inputs = _connect(names, connections, what)
    order = _topological(names, inputs, what)
    container = (
        value
        if isinstance(value, MatObject) and value.classname in DETECTOR_CLASSES
        else None
    )
    return LayerGraph(
        matlab_class, tuple(layers), tuple(names), inputs, outputs, order, container
    )


def is_branched_struct(value: Any) -> bool:
    """A network some detectors (fasterRCNNObjectDetector, struct Version 1)
    save as a struct: a chain ``Layers`` and a chain ``RegLayers`` that
    branches off after layer ``BranchLayerIdx`` (1-based)."""
    return (
        isinstance(value, dict)
        and isinstance(value.get("Layers"), list)
        and "RegLayers" in value
        and "BranchLayerIdx" in value
    )


def _branched(value: dict[str, Any], what: str) -> LayerGraph:
    main = [v for v in value["Layers"] if isinstance(v, MatObject)]
    reg = value["RegLayers"]
    reg = [reg] if isinstance(reg, MatObject) else reg if isinstance(reg, list) else []
    if not main or not reg or not all(isinstance(v, MatObject) for v in reg):
        raise ConversionError(
            f"{what}: its Layers and RegLayers must be layer arrays; the file is "
            "damaged.",
            hint=_RESAVE,
        )
    raw = np.asarray(value["BranchLayerIdx"], dtype=object).ravel()
    branch = raw[0] if raw.size == 1 else None
    if not isinstance(branch, (int, float, np.number)) or branch not in range(
        1, len(main) + 1
    ):
        raise ConversionError(
            f"{what}: its BranchLayerIdx is {_kind(value['BranchLayerIdx'])}, not "
            f"the index of one of its {len(main)} layers; the file is damaged.",
            hint=_RESAVE,
        )
    layers = [*main, *reg]
    names = _names(layers, what)
    inputs: dict[str, tuple[Port, ...]] = {
        name: ((Port(layer=names[i - 1]),) if i else ())
        for i, name in enumerate(names[: len(main)])
    }
    above = [names[int(branch) - 1], *names[len(main) : -1]]
    inputs.update(
        (name, (Port(layer=src),))
        for src, name in zip(above, names[len(main) :], strict=True)
    )
    order = _topological(names, inputs, what)
    return LayerGraph(
        "network struct (Layers and RegLayers)",
        tuple(layers),
        tuple(names),
        inputs,
        (),
        order,
        None,
    )


def _unpack(
    value: Any, what: str
) -> tuple[str, list[MatObject], list[tuple[str, str]] | None, tuple[str, ...]]:
    if isinstance(value, MatObject) and value.classname.startswith("nnet.cnn.layer."):
        value = [value]  # a 1×1 layer array reads back as the layer itself
    if isinstance(value, list):
        layers = [v for v in value if isinstance(v, MatObject)]
        return "layer array", layers, None, ()
    if not isinstance(value, MatObject):
        raise ConversionError(f"{what} is not a network.")
    cls = value.classname
    if cls in DETECTOR_CLASSES:
        inner = value.get("Network")
        if isinstance(inner, MatObject) and inner.classname in NETWORK_CLASSES:
            _, layers, connections, outputs = _unpack(inner, what)
            return f"{cls} ({inner.classname})", layers, connections, outputs
        raise ConversionError(
            f"{what} is a {cls} whose Network is neither a network object nor "
            "a Layers/RegLayers struct.",
            hint="In MATLAB, save detector.Network and convert that.",
        )
    if cls == "dlnetwork":
        inner = value.get("LayerGraph")
        if not isinstance(inner, MatObject):
            raise ConversionError(f"{what}: this dlnetwork has no saved layer graph.")
        _, layers, connections, _ = _unpack(inner, what)
        return cls, layers, connections, _output_names(value, layers, what)
    layers = value.get("Layers")
    layers = [layers] if isinstance(layers, MatObject) else layers
    layers = layers if isinstance(layers, list) else []
    if cls == "SeriesNetwork":
        return cls, layers, None, ()
    conns = value.get("Connections")
    return cls, layers, _connections(conns, what), ()


def _output_names(
    value: MatObject, layers: list[MatObject], what: str
) -> tuple[str, ...]:
    """dlnetwork OutputNames, each naming a layer of the network."""
    outputs = value.get("OutputNames")
    if outputs is None or np.size(outputs) == 0:
        return ()
    names = (outputs,) if isinstance(outputs, str) else outputs
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ConversionError(
            f"{what}: its OutputNames holds {_kind(outputs)}, not layer names; "
            "the file is damaged.",
            hint=_RESAVE,
        )
    known = {_name_text(layer, i, what) for i, layer in enumerate(layers)}
    for name in names:
        if name and name not in known and name.rpartition("/")[0] not in known:
            raise ConversionError(
                f"{what}: its OutputNames names {name!r}, which is not a layer of "
                "the network; the file is damaged.",
                hint=_RESAVE,
            )
    return tuple(names)


def _connections(table: Any, what: str) -> list[tuple[str, str]]:
    if not isinstance(table, dict) or "Source" not in table:
        return []
    sources, targets = table.get("Source"), table.get("Destination")
    if not isinstance(sources, list) or not isinstance(targets, list):
        raise ConversionError(
            f"{what}: its Connections table has no Source/Destination columns of "
            "layer names; the file is damaged.",
            hint=_RESAVE,
        )
    if len(sources) != len(targets):
        raise ConversionError(
            f"{what}: its Connections table has {len(sources)} sources but "
            f"{len(targets)} destinations; the file is damaged.",
            hint=_RESAVE,
        )

    def text(v: Any) -> str:
        while isinstance(v, list) and len(v) == 1:
            v = v[0]
        if not isinstance(v, str):
            raise ConversionError(
                f"{what}: its Connections table holds {_kind(v)} where a layer "
                "name belongs; the file is damaged.",
                hint=_RESAVE,
            )
        return v

    return [(text(s), text(d)) for s, d in zip(sources, targets, strict=True)]


def _kind(v: Any) -> str:
    if isinstance(v, np.ndarray):
        return f"a {'×'.join(map(str, v.shape))} {v.dtype} array"
    return f"a {type(v).__name__}"


def _names(layers: list[MatObject], what: str = "") -> list[str]:
    """Layer names; unnamed layers get class-based names like MATLAB's."""
    texts = [_name_text(layer, i, what) for i, layer in enumerate(layers)]
    names: list[str] = []
    counts: dict[str, int] = {}
    taken = set(texts)
    for layer, name in zip(layers, texts, strict=True):
        if not name or name in names:
            base = name or fallback_name(layer.classname)
            n = counts.get(base, 0)
            while True:
                n += 1
                candidate = f"{base}_{n}"
                if candidate not in taken and candidate not in names:
                    break
            counts[base] = n
            name = candidate
        names.append(name)
    return names


def _name_text(layer: MatObject, i: int, what: str) -> str:
    """A layer's Name as text ('' when unnamed); refuse a Name that is data."""
    name = layer.get("Name")
    if isinstance(name, list) and len(name) == 1:
        name = name[0]
    if name is None or (not isinstance(name, str) and np.size(name) == 0):
        return ""
    if not isinstance(name, str):
        raise ConversionError(
            f"{what}: layer {i + 1} ({layer.classname}) has {_kind(name)} as "
            "its Name, not text; the file is damaged.",
            hint=_RESAVE,
        )
    return name


def _port(text: str, default_names: tuple[str, ...]) -> tuple[str, int]:
    layer, _, port = text.rpartition("/")
    if not layer:
        return text, 0
    if port in default_names:
        return layer, 0
    for prefix in default_names:
        if port.startswith(prefix) and port[len(prefix) :].isdigit():
            return layer, int(port[len(prefix) :]) - 1
    if port in NAMED_PORTS:
        return layer, NAMED_PORTS[port]
    return text, 0


def _connect(
    names: list[str], connections: list[tuple[str, str]], what: str
) -> dict[str, tuple[Port, ...]]:
    known = set(names)
    slots: dict[str, dict[int, Port]] = {n: {} for n in names}
    for src, dst in connections:
        s_layer, s_index = _port(src, ("out",)) if src not in known else (src, 0)
        d_layer, d_index = _port(dst, ("in",)) if dst not in known else (dst, 0)
        if s_layer not in known or d_layer not in known:
            raise ConversionError(
                f"{what}: connection {src!r} → {dst!r} names a layer that is not in the network."
            )
        port = Port(layer=s_layer, index=s_index)
        if slots[d_layer].get(d_index, port) != port:
            raise ConversionError(
                f"{what}: input {dst!r} is connected twice (from "
                f"{_port_text(slots[d_layer][d_index])!r} and {src!r}); the file is "
                "damaged.",
                hint=_RESAVE,
            )
        slots[d_layer][d_index] = port
    for n in names:
        if sorted(slots[n]) != list(range(len(slots[n]))):
            missing = min(set(range(len(slots[n]) + 1)) - set(slots[n]))
            raise ConversionError(
                f"{what}: layer {n!r} has input {max(slots[n]) + 1} connected but "
                f"not input {missing + 1}; the file is damaged.",
                hint=_RESAVE,
            )
    return {n: tuple(slots[n][i] for i in sorted(slots[n])) for n in names}


def _port_text(port: Port) -> str:
    return port.layer if port.index == 0 else f"{port.layer}/out{port.index + 1}"


def _topological(
    names: list[str], inputs: dict[str, tuple[Port, ...]], what: str
) -> tuple[int, ...]:
    index = {n: i for i, n in enumerate(names)}
    consumers: dict[str, list[str]] = {n: [] for n in names}
    pending = {n: 0 for n in names}
    for n in names:
        for p in inputs[n]:
            consumers[p.layer].append(n)
            pending[n] += 1
    ready = [index[n] for n in names if pending[n] == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for c in consumers[names[i]]:
            pending[c] -= 1
            if pending[c] == 0:
                heapq.heappush(ready, index[c])
    if len(order) != len(names):
        stuck = sorted((n for n in names if pending[n]), key=index.__getitem__)
        raise ConversionError(
            f"{what}: the layer graph has a cycle through {', '.join(map(repr, stuck[:5]))}."
        )
    return tuple(order)
