"""Parse a layer graph into the IR: one handler call per layer, in
topological order, so every handler knows the types flowing into it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from codegen import stubs
from codegen.diagnostics import ConversionError, Diagnostic, error
from codegen.graph import LayerGraph
from codegen.ir import InputSpec, Network, Node, OutputSpec, Port, TensorType
from codegen.layers import Layer, LayerError, Untranslatable, attention, registry
from codegen.matfile import MatObject
from codegen.naming import class_name as make_class_name
from codegen.ports import check_output_ports, missing_port
from codegen.text import doc

# Toolboxes whose layers are MathWorks' own; anything else is user code.
BUILTIN_PREFIXES = ("nnet.", "vision.", "rl.", "images.", "audio.", "textanalytics.")
# MatConvNet's own types (codegen/matconvnet.py) are not user code either.
BUILTIN_PREFIXES += ("matconvnet.", "dagnn.")


@dataclass
class Parsed:
    """Every layer's outcome: a node, a problem, or skipped after a problem."""

    nodes: dict[str, Node] = field(default_factory=dict)
    problems: dict[str, Diagnostic] = field(default_factory=dict)
    blocked: dict[str, str] = field(
        default_factory=dict
    )  # layer → refused layer upstream
    stubbed: dict[str, Diagnostic] = field(default_factory=dict)  # why, for --strict
    types: dict[Port, TensorType] = field(default_factory=dict)


def parse_layers(graph: LayerGraph) -> Parsed:
    """Run every handler it can, in topological order; never raises."""
    handlers = registry()
    consumed = {p.layer for ports in graph.inputs.values() for p in ports}
    out = Parsed()
    types = out.types
    for i in graph.order:
        record, name = graph.layers[i], graph.names[i]
        ports = graph.inputs[name]
        handler = handlers.get(record.classname)
        if handler is None and name not in consumed and _custom_output(record):
            handler = custom_output
        missing = [p.layer for p in ports if p not in types]
        if missing:  # an upstream layer failed; it is reported already
            first = missing[0]
            if first in out.nodes:  # it ran, but has no such output
                out.problems[name] = missing_port(name, record.classname, ports, types)
                continue
            out.blocked[name] = out.blocked.get(first, first)
            continue
        in_types = tuple(types[p] for p in ports)
        sources = tuple(out.nodes[p.layer] for p in ports)
        layer = Layer(record, name, ports, in_types, sources)
        if handler is None:
            problem = _unsupported(name, record.classname)
            node = stubs.stub_for(layer, problem)
            _add(out, node)
            out.stubbed[name] = problem
            continue
        for refined in stubs.refine(layer, types).values():  # sizes of stubs feeding it
            _add(out, refined)
            in_types = tuple(types[p] for p in ports)
            sources = tuple(out.nodes[p.layer] for p in ports)
            layer = Layer(record, name, ports, in_types, sources)
        try:
            node = handler(layer)
        except LayerError as exc:
            problem = error("layer", name, record.classname, exc.message, exc.hint)
            function = stubs.function_name(layer)
            if function or isinstance(exc, Untranslatable):  # the user writes it
                stub = stubs.stub_for(layer, problem, function)
                if isinstance(exc, Untranslatable) and exc.out_types:
                    stub = dataclasses.replace(
                        stub, out_types=exc.out_types, assumption="from its properties"
                    )
                _add(out, stub)
                out.stubbed[name] = problem
            else:
                out.problems[name] = problem
            continue
        except Exception as exc:  # a field set we have not met: name the layer
            out.problems[name] = error(
                "internal",
                name,
                record.classname,
                f"its saved fields could not be read ({type(exc).__name__}: {exc}): "
                "the file is damaged, or comes from a release mat2torch has not met.",
                "Save the network again in MATLAB; if the new file fails the "
                "same way, open an issue with it.",
            )
            continue
        _add(out, node)
    return out


def _add(out: Parsed, node: Node) -> None:
    out.nodes[node.name] = node
    for k, t in enumerate(node.out_types):
        out.types[Port(layer=node.name, index=k)] = t


def parse(
    graph: LayerGraph,
    *,
    source: str,
    variable: str,
    class_name: str | None,
) -> Network:
    parsed = parse_layers(graph)
    if parsed.problems:
        problems = tuple(parsed.problems.values())
        raise ConversionError(
            f"{source}: variable '{variable}' cannot be converted: "
            f"{len(problems)} layer(s) cannot be converted.",
            diagnostics=problems,
            hint="Nothing was written. The README lists the supported layers.",
        )
    net = _network(graph, parsed.nodes, source, variable, class_name)
    return attention.for_predict(stubs.finish(net))


def _custom_output(record: MatObject) -> bool:
    """A user-defined output layer: it only defines a training loss."""
    if record.classname.startswith(BUILTIN_PREFIXES):
        return False
    return any(
        k in record for k in ("Classes", "ClassNames", "ResponseNames", "LossFunction")
    )


def custom_output(layer: Layer) -> Node:
    from codegen.layers.output import Output

    note = (
        f"The user-defined output layer {doc(layer.name)} ({doc(layer.classname)}) "
        "only defines MATLAB's training loss; it is left out and its loss is not "
        "translated."
    )
    return Output(**layer.common(), out_types=layer.in_types, notes=(note,))


def _unsupported(name: str, classname: str) -> Diagnostic:
    if not classname.startswith(BUILTIN_PREFIXES):
        return error(
            "custom",
            name,
            classname,
            "is a user-defined layer; a .mat file stores only its property "
            "values, not its code, so there is nothing to translate.",
            "Replace it with built-in layers in MATLAB before saving, or remove "
            "it there and write its PyTorch equivalent by hand.",
        )
    return error(
        "unsupported",
        name,
        classname,
        "is not supported by mat2torch yet.",
        "Open an issue with the file, or replace the layer in MATLAB.",
    )


def _network(
    graph: LayerGraph,
    nodes: dict[str, Node],
    source: str,
    variable: str,
    class_name: str | None,
) -> Network:
    ordered = [nodes[graph.names[i]] for i in graph.order]
    output_names = _output_names(graph, ordered)
    needed = _ancestors(nodes, [name.partition("/")[0] for name in output_names])
    dropped = [n.name for n in ordered if n.name not in needed]
    ordered = [n for n in ordered if n.name in needed]
    by_name = {n.name: n for n in ordered}
    notes: tuple[str, ...] = ()
    if dropped:
        shown = ", ".join(map(doc, dropped[:8])) + (" ..." if len(dropped) > 8 else "")
        notes = (f"Layers that feed none of the outputs are left out: {shown}.",)

    inputs = tuple(
        InputSpec(layer=n.name, ident="", type=n.out_type)
        for n in ordered
        if not n.inputs
    )
    if not inputs:
        raise ConversionError(f"{source}: variable '{variable}' has no input layer.")
    check_output_ports(by_name, output_names, f"{source}: variable '{variable}'")
    outputs = tuple(_output(by_name, name) for name in output_names)
    constants, detector_notes = _detector_constants(graph, outputs)
    return Network(
        source=source,
        variable=variable,
        matlab_class=graph.matlab_class,
        class_name=class_name or make_class_name(variable),
        nodes=tuple(ordered),
        inputs=inputs,
        outputs=outputs,
        notes=notes + detector_notes,
        constants=constants,
        matlab_order=tuple(n for n in graph.names if n in needed),
    )


def _detector_constants(
    graph: LayerGraph, outputs: tuple[OutputSpec, ...]
) -> tuple[tuple[tuple[str, object], ...], tuple[str, ...]]:
    """A yolov2ObjectDetector's anchors and class names become module constants."""
    record = graph.container
    if record is None or record.classname != "yolov2ObjectDetector":
        return (), ()
    constants: list[tuple[str, object]] = []
    anchors = record.get("AnchorBoxes")
    if isinstance(anchors, np.ndarray) and anchors.size:
        rows = np.asarray(anchors, dtype=np.float64).reshape(-1, 2)
        constants.append(
            ("ANCHOR_BOXES", tuple((_number(h), _number(w)) for h, w in rows))
        )
    classes = record.get("ClassNames")
    names = tuple(str(c) for c in classes) if isinstance(classes, list) else ()
    if names and not any(o.classes for o in outputs):
        constants.append(("CLASSES", names))
    note = (
        "A yolov2ObjectDetector: forward() returns the YOLO v2 transform's output; "
        "ANCHOR_BOXES lists the anchors as (height, width) in pixels. Decoding boxes "
        "and non-maximum suppression (MATLAB's detect()) are not part of the model."
    )
    return tuple(constants), (note,)


def _number(v: float) -> float | int:
    return int(v) if float(v).is_integer() else float(v)


def _ancestors(nodes: dict[str, Node], names: list[str]) -> set[str]:
    seen: set[str] = set()
    stack = list(names)
    while stack:
        name = stack.pop()
        if name in seen or name not in nodes:
            continue
        seen.add(name)
        stack += [p.layer for p in nodes[name].inputs]
    return seen


def _output_names(graph: LayerGraph, ordered: list[Node]) -> list[str]:
    if graph.output_names:
        return [n for n in graph.output_names if n]
    used = {p.layer for n in ordered for p in n.inputs}
    ends = [n for n in ordered if n.name not in used]
    # an input layer that feeds nothing is not an output (it is left out,
    # with a note) unless the network is nothing else
    return [n.name for n in [n for n in ends if n.inputs] or ends]


def _output(nodes: dict[str, Node], name: str) -> OutputSpec:
    layer, _, port = name.partition("/")
    node = nodes[layer]
    index = int(port[3:]) - 1 if port.startswith("out") and port[3:].isdigit() else 0
    if port in node.port_names:  # a user-defined layer's named output
        index = node.port_names.index(port)
    if node.elide:
        return OutputSpec(
            port=Port(layer=layer),
            ident="",
            type=dataclasses.replace(node.in_type, time_last=False),
            classes=getattr(node, "classes", ()),
            class_weights=getattr(node, "class_weights", ()),
            loss=getattr(node, "loss", ""),
        )
    return OutputSpec(
        port=Port(layer=layer, index=index),
        ident="",
        type=dataclasses.replace(node.out_types[index], time_last=False),
    )
