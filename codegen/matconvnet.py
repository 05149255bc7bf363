"""MatConvNet networks (SimpleNN and DagNN) → the same LayerGraph as the toolbox.

MatConvNet saves networks as plain structs, not Deep Learning Toolbox
objects. A SimpleNN is ``net.layers``, a cell array of structs with a
``type``; a DagNN saved with ``net.saveobj()`` (which ``save`` also calls for
a ``dagnn.DagNN`` object) is a struct of ``layers`` (name, type, inputs,
outputs, params, block), ``params`` (name, value), ``vars`` and ``meta``.

Each layer becomes a record whose class is MatConvNet's own name
(``matconvnet.conv`` for SimpleNN types, ``dagnn.Conv`` for DagNN blocks), so
users recognise their layers. Fields keep MatConvNet's names (``pad``,
``stride``, ``dilate``, ``pool``, ``method``, ``param``, ...) and the
parameters are resolved into named fields (``filters``, ``biases``,
``multipliers``, ``moments``, ``scale``) for SimpleNN and DagNN alike. The
semantics live in ``codegen/layers/matconvnet.py`` (PyTorch) and in the
MatConvNet section of ``codegen/reference.py`` (NumPy), independently.
"""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path
from typing import Any

import numpy as np

from codegen.diagnostics import ConversionError
from codegen.graph import LayerGraph, _topological
from codegen.ir import Network, Port
from codegen.matfile import MatObject, Variable, load_variables

INPUT_CLASS = "matconvnet.input"
DAGNN_CLASS = "dagnn.DagNN"
# Fully convolutional networks often record no input size; shapes shown and
# the check forward pass then use this one (forward accepts any size).
NOMINAL_SIZE = (32, 32)

# Parameters, by position in SimpleNN's ``weights`` / DagNN's ``params``.
PARAMS = {
    "conv": ("filters", "biases"),
    "convt": ("filters", "biases"),
    "bnorm": ("multipliers", "biases", "moments"),
    "scale": ("scale", "biases"),
}
DAGNN_KIND = {
    "dagnn.Conv": "conv",
    "dagnn.ConvTranspose": "convt",
    "dagnn.BatchNorm": "bnorm",
    "dagnn.Scale": "scale",
}
# Layers that only define a training objective.
SIMPLENN_LOSSES = ("softmaxloss", "loss", "pdist")
DAGNN_LOSSES = ("dagnn.Loss", "dagnn.PDist", "dagnn.EuclideanLoss")


# --------------------------------------------------------------------------
# Recognising a network


def kind(value: Any) -> str:
    """'simplenn', 'dagnn' or '' for anything else."""
    if isinstance(value, MatObject) and value.classname == DAGNN_CLASS:
        return "dagnn"
    if not isinstance(value, dict):
        return ""
    layers = _as_list(value.get("layers"))
    if not layers or not all(isinstance(layer, dict) for layer in layers):
        return ""
    if all("type" in layer for layer in layers) and not all(
        "block" in layer for layer in layers
    ):
        return "simplenn"
    if all("block" in layer and "type" in layer for layer in layers) and (
        "params" in value or "vars" in value
    ):
        return "dagnn"
    return ""


STRUCT_CLASSES = ("struct", DAGNN_CLASS)  # the classes a MatConvNet network has


def holds_network(path: Path, variable: Variable) -> bool:
    """Whether a struct (or dagnn.DagNN) variable is a MatConvNet network."""
    if variable.classname not in STRUCT_CLASSES:
        return False
    try:
        return bool(kind(_load(path, variable.name)))
    except ConversionError:
        return False


_CACHE: dict[tuple[str, str, int, int], Any] = {}


def _load(path: Path, name: str) -> Any:
    """Load once per file version: choosing a variable reads it already."""
    stat = path.stat()
    key = (str(path.resolve()), name, stat.st_mtime_ns, stat.st_size)
    if key not in _CACHE:
        _CACHE.clear()
        _CACHE[key] = load_variables(path, [name]).get(name)
    return _CACHE[key]


def load(path: Path, name: str) -> Any:
    """The variable's record; taken from the cache when choose_variable read it."""
    path = Path(path)
    stat = path.stat()
    key = (str(path.resolve()), name, stat.st_mtime_ns, stat.st_size)
    if key in _CACHE:
        return _CACHE.pop(key)
    return load_variables(path, [name])[name]


# --------------------------------------------------------------------------
# SimpleNN and DagNN → LayerGraph


def build(value: Any, what: str) -> LayerGraph | None:
    """The layer graph of a MatConvNet network, or None for anything else."""
    found = kind(value)
    if not found:
        return None
    if isinstance(value, MatObject):
        value = _dagnn_object(value, what)
    if found == "simplenn":
        records, inputs, cls = _simplenn(value, what)
    else:
        records, inputs, cls = _dagnn(value, what)
    names = tuple(str(r.get("Name")) for r in records)
    order = _topological(list(names), inputs, what)
    return LayerGraph(cls, tuple(records), names, inputs, (), order)


def _dagnn_object(value: MatObject, what: str) -> dict:
    fields = dict(value.fields)
    if isinstance(fields.get("any"), dict):
        fields.update(fields["any"])
    if "layers" not in fields:
        raise ConversionError(
            f"{what} is a dagnn.DagNN object whose layers could not be read from "
            "the file.",
            hint="In MATLAB, save the network's struct form instead: "
            "net = net.saveobj(); save('net.mat', 'net').",
        )
    return fields


def _simplenn(
    net: dict, what: str
) -> tuple[list[MatObject], dict[str, tuple[Port, ...]], str]:
    layers = _as_list(net.get("layers"))
    used: set[str] = set()
    records: list[MatObject] = []
    for i, layer in enumerate(layers, start=1):
        kind_ = _text(layer.get("type")) or "(no type)"
        # vl_simplenn_tidy names unnamed layers 'layer<i>'.
        name = _unique(_text(layer.get("name")) or f"layer{i}", used)
        fields = {k: v for k, v in layer.items() if k not in ("weights", "name")}
        fields["Name"] = name
        weights = _as_list(layer.get("weights"))
        if not weights:  # releases before 1.0-beta: filters/biases fields
            weights = [layer.get("filters"), layer.get("biases")]
            fields.pop("filters", None)
            fields.pop("biases", None)
        fields.update(_named_params(PARAMS.get(kind_, ()), weights))
        records.append(MatObject(f"matconvnet.{kind_}", fields))
    if not records:
        raise ConversionError(f"{what} is a MatConvNet network with no layers.")
    first = _input_record(net, records[0], _unique("input", used), what)
    records = [first, *records]
    inputs: dict[str, tuple[Port, ...]] = {first.get("Name"): ()}
    for prev, rec in itertools.pairwise(records):
        inputs[rec.get("Name")] = (Port(layer=prev.get("Name")),)
    records = _losses_last(records)
    return records, inputs, "MatConvNet SimpleNN"


def _losses_last(records: list[MatObject]) -> list[MatObject]:
    """Name the loss in the elided record of a training-only layer."""
    out = []
    for rec in records:
        if rec.classname.removeprefix("matconvnet.") in SIMPLENN_LOSSES:
            loss = _text(rec.get("loss")) or rec.classname.removeprefix("matconvnet.")
            rec = MatObject(rec.classname, {**rec.fields, "loss": loss})
        out.append(rec)
    return out


def _dagnn(
    net: dict, what: str
) -> tuple[list[MatObject], dict[str, tuple[Port, ...]], str]:
    params = {
        _text(p.get("name")): p.get("value")
        for p in _as_list(net.get("params"))
        if isinstance(p, dict)
    }
    layers = [layer for layer in _as_list(net.get("layers")) if isinstance(layer, dict)]
    producer: dict[str, tuple[str, int]] = {}
    used: set[str] = set()
    names = []
    for layer in layers:
        name = _unique(_text(layer.get("name")) or "layer", used)
        names.append(name)
        for k, var in enumerate(_texts(layer.get("outputs"))):
            producer[var] = (name, k)
    records: list[MatObject] = []
    connections: dict[str, list[str]] = {}
    losses: dict[str, list[str]] = {}  # prediction var → loss names
    for name, layer in zip(names, layers, strict=True):
        cls = _text(layer.get("type"))
        block = layer.get("block")
        fields = dict(block) if isinstance(block, dict) else {}
        fields["Name"] = name
        ins = _texts(layer.get("inputs"))
        if cls in DAGNN_LOSSES:
            fields["loss"] = _text(fields.get("loss")) or cls.removeprefix("dagnn.")
            if not ins:
                continue
            losses.setdefault(ins[0], []).append(name)
            ins = ins[:1]  # the label is a training input
        if cls == "dagnn.Pooling" and "pool" not in fields:
            fields["pool"] = fields.get("poolSize")
        names_ = PARAMS.get(DAGNN_KIND.get(cls, ""), ())
        values = []
        for pname in _texts(layer.get("params")):
            if pname not in params:
                raise ConversionError(
                    f"{what}: layer '{name}' ({cls}) uses parameter '{pname}', "
                    "which is not in net.params."
                )
            values.append(params[pname])
        fields.update(_named_params(names_, values))
        fields["inputs"] = ins
        records.append(MatObject(cls, fields))
        connections[name] = ins
    # One elided output per predicted variable: several losses (objective,
    # top-1 and top-5 error) on one prediction are one output.
    keep = []
    for rec in records:
        name = rec.get("Name")
        if rec.classname in DAGNN_LOSSES:
            group = losses.get(connections[name][0], [])
            if group and group[0] != name:
                continue
            named = [r for r in records if r.get("Name") in group]
            loss = ", ".join(f"{_text(r.get('loss'))} ({r.get('Name')})" for r in named)
            rec = MatObject(rec.classname, {**rec.fields, "loss": loss})
        keep.append(rec)
    inputs_needed = sorted(
        {v for r in keep for v in connections[r.get("Name")] if v not in producer},
        key=lambda v: _var_order(net, v),
    )
    input_records = []
    for var in inputs_needed:
        consumer = next(r for r in keep if var in connections[r.get("Name")])
        rec = _input_record(net, consumer, _unique(var, used), what, var=var)
        producer[var] = (rec.get("Name"), 0)
        input_records.append(rec)
    inputs: dict[str, tuple[Port, ...]] = {r.get("Name"): () for r in input_records}
    for rec in keep:
        ports = []
        for var in connections[rec.get("Name")]:
            layer, index = producer[var]
            ports.append(Port(layer=layer, index=index))
        inputs[rec.get("Name")] = tuple(ports)
    return [*input_records, *keep], inputs, "MatConvNet DagNN"


def _var_order(net: dict, var: str) -> int:
    names = [
        _text(v.get("name")) for v in _as_list(net.get("vars")) if isinstance(v, dict)
    ]
    return names.index(var) if var in names else len(names)


def _named_params(names: tuple[str, ...], values: list[Any]) -> dict[str, Any]:
    """Parameters as learnables ``{Value, LearnRateFactor}`` under their role."""
    out: dict[str, Any] = {}
    for key, value in zip(names, values, strict=False):
        if isinstance(value, np.ndarray) and value.size:
            out[key] = {"Value": value, "LearnRateFactor": 1.0}
    return out


# --------------------------------------------------------------------------
# The input: size and normalization from net.meta


def _meta(net: dict) -> dict:
    """net.meta; files from before MatConvNet 1.0-beta keep its fields at the top."""
    meta = net.get("meta")
    if isinstance(meta, dict):
        return meta
    return {
        k: net[k] for k in ("normalization", "classes") if isinstance(net.get(k), dict)
    }


def _input_record(
    net: dict, consumer: MatObject, name: str, what: str, var: str = ""
) -> MatObject:
    meta = _meta(net)
    norm = (
        meta.get("normalization") if isinstance(meta.get("normalization"), dict) else {}
    )
    size = _meta_size(meta, norm, var)
    average = norm.get("averageImage")
    average = average if isinstance(average, np.ndarray) and average.size else None
    channels = size[2] if len(size) > 2 else _channels(consumer, average)
    if channels is None:
        raise ConversionError(
            f"{what}: the number of input channels of this MatConvNet network "
            "could not be found (no meta.normalization.imageSize and no "
            f"convolution reading input '{var or name}').",
            hint="Set net.meta.normalization.imageSize = [H W C] in MATLAB and save again.",
        )
    spatial = tuple(size[:2]) if len(size) >= 2 else NOMINAL_SIZE
    fields: dict[str, Any] = {
        "Name": name,
        "imageSize": np.array([*spatial, channels], dtype=np.float64),
        "sizeKnown": len(size) >= 2,
    }
    if average is not None:
        if average.ndim <= 2 and 1 in average.shape and average.size == channels:
            average = average.reshape(1, 1, channels)  # a per-channel vector
        fields["averageImage"] = average
        # what the toolbox's input layers call it (inspect shows it)
        fields["Normalization"] = {"Type": "zerocenter", "AverageImage": average}
    return MatObject(INPUT_CLASS, fields)


def _meta_size(meta: dict, norm: dict, var: str) -> tuple[int, ...]:
    for entry in _as_list(meta.get("inputs")):  # DagNN: meta.inputs(i).size
        if isinstance(entry, dict) and (not var or _text(entry.get("name")) == var):
            size = entry.get("size")
            if isinstance(size, np.ndarray) and size.size >= 3:
                return tuple(int(v) for v in size.ravel()[:3])
    size = norm.get("imageSize", meta.get("inputSize"))
    if isinstance(size, np.ndarray) and size.size >= 2:
        return tuple(int(v) for v in size.ravel()[:3])
    return ()


def _channels(consumer: MatObject, average: np.ndarray | None) -> int | None:
    if average is not None:
        return int(average.shape[2]) if average.ndim == 3 else int(average.size)
    filters = consumer.get("filters")
    if isinstance(filters, dict):
        shape = (*np.shape(filters["Value"]), 1, 1)
        kind_ = consumer.classname.rsplit(".", 1)[-1].lower()
        return int(shape[3] if kind_ in ("convt", "convtranspose") else shape[2])
    size = consumer.get("size")  # dagnn.Conv block: [h w c f]
    if isinstance(size, np.ndarray) and size.size == 4:
        return int(size.ravel()[2])
    return None


# --------------------------------------------------------------------------
# After parsing: meta.classes and notes


def finish(net: Network, record: Any) -> Network:
    """Class names from meta.classes; a note when the input size is nominal."""
    found = kind(record)
    if not found:
        return net
    if isinstance(record, MatObject):
        record = _dagnn_object(record, net.source)
    meta = _meta(record)
    notes = list(net.notes)
    constants = list(net.constants)
    outputs = list(net.outputs)
    classes = meta.get("classes") if isinstance(meta.get("classes"), dict) else {}
    names = tuple(_texts(classes.get("name")))
    descriptions = tuple(_texts(classes.get("description")))
    if names and outputs and not outputs[0].classes:
        outputs[0] = dataclasses.replace(outputs[0], classes=names)
        if len(descriptions) == len(names):
            constants.append(("CLASS_DESCRIPTIONS", descriptions))
    for spec in net.inputs:
        node = net.node(spec.layer)
        if node.matlab_class == INPUT_CLASS and not _size_known(node.name, record):
            h, w = spec.type.spatial
            notes.append(
                f"The file records no input size (net.meta); sizes shown assume "
                f"{h}×{w} images. forward() takes any size the layers accept."
            )
    call = (
        "net.mode = 'test'; net.eval({inputName, x})"
        if found == "dagnn"
        else "vl_simplenn(net, x, [], [], 'mode', 'test')"
    )
    notes.append(
        f"Converted from a MatConvNet {'DagNN' if found == 'dagnn' else 'SimpleNN'}: "
        f"forward() computes what {call} computes (test mode: batch normalization "
        "uses the saved moments, dropout is the identity); the averageImage "
        "subtraction of net.meta.normalization, if any, runs inside forward()."
    )
    return dataclasses.replace(
        net, outputs=tuple(outputs), constants=tuple(constants), notes=tuple(notes)
    )


def _size_known(name: str, record: dict) -> bool:
    meta = _meta(record)
    norm = (
        meta.get("normalization") if isinstance(meta.get("normalization"), dict) else {}
    )
    return bool(_meta_size(meta, norm, ""))


# --------------------------------------------------------------------------
# small helpers


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    if value is None or (isinstance(value, np.ndarray) and value.size == 0):
        return []
    return [value]


def _text(value: Any) -> str:
    while isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, (str, np.str_)):
        return str(value)
    return ""


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if value else []
    return [_text(v) for v in _as_list(value) if _text(v)]


def _unique(name: str, used: set[str]) -> str:
    candidate, n = name, 1
    while candidate in used:
        n += 1
        candidate = f"{name}_{n}"
    used.add(candidate)
    return candidate
