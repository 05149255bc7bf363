"""Stubs: editable placeholders for layers no converter can translate.

A .mat file keeps a user-defined layer's property values but never its code,
and a functionLayer calling a named function (``@zeropad``) keeps only the
name. Such a layer becomes an ``nn.Module`` class in model.py, written once
per MATLAB class and instantiated once per layer: its numeric properties are
parameters or buffers loaded from weights.pt, and ``forward`` raises
``NotImplementedError`` until the user writes it. The rest of the network is
converted and checked as usual; the check feeds zeros of the assumed output
size past each stub.

A stub's output size is not in the file, so it is assumed, from the best
evidence at hand (see ``refine``): a following fullyConnectedLayer's
InputSize, the other inputs of a following combining layer, or else the
stub's own first input. Each stub documents which.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import keyword
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from codegen.diagnostics import ConversionError, Diagnostic
from codegen.ir import Call, ModuleNode, Network, Node, TensorType
from codegen.layers import Layer
from codegen.matfile import FunctionHandle, MatObject
from codegen.text import doc, plain_sizes

# Fields MATLAB keeps for every layer: not properties of the user's class.
_SKIP = {"Name", "Description", "Type", "Version", "PrivateNumStates"}


@functools.cache
def _module_attrs() -> frozenset[str]:
    """nn.Module attributes a property must not shadow (torch is imported
    only when needed: the pipeline imports it while the file is read)."""
    import torch

    return frozenset(dir(torch.nn.Module)) | {"forward"}


SAME_AS_INPUT = (
    "assumed the same as its first input (nothing in the file says otherwise)"
)


@dataclass(frozen=True, kw_only=True, eq=False)
class Stub(ModuleNode):
    """An untranslatable layer: an instance of the editable class ``stub_class``.

    ``properties`` are the constructor's keyword arguments (MATLAB property
    name → value; numeric arrays pass their MATLAB size, their values live in
    ``params`` under the same name). ``learnable`` names the properties that
    are ``nn.Parameter``s; ``dropped`` the non-numeric objects not carried
    over; ``assumption`` says how the output sizes were decided.
    """

    template: ClassVar[str] = "stub"
    stub_class: str
    description: str = ""
    learnable: tuple[str, ...] = ()
    properties: tuple[tuple[str, object], ...] = ()
    dropped: tuple[str, ...] = ()
    assumption: str = SAME_AS_INPUT
    input_names: tuple[str, ...] = ()
    refusal: Diagnostic | None = None  # what --strict reports
    custom: str = ""  # the user's class source (--custom-layers), if given

    def hookable(self) -> bool:
        return len(self.out_types) == 1

    @property
    def matlab_short(self) -> str:
        return self.short_class


def attribute(name: str) -> str | None:
    """The Python attribute for MATLAB property ``name`` (None: not usable)."""
    if not name.isidentifier() or not name.isascii() or keyword.iskeyword(name):
        return None
    return f"{name}_" if name in _module_attrs() else name


def _numeric(value: Any) -> np.ndarray | None:
    if isinstance(value, MatObject) and value.classname == "dlarray":
        value = value.get("Data")
    if isinstance(value, dict) and "Value" in value:
        value = value["Value"]
    if isinstance(value, np.ndarray) and value.dtype.kind in "fiub":
        return value
    return None


def _plain(value: Any) -> object:
    """A non-numeric property as a Python literal, or None if it has none."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None


def stub_for(layer: Layer, problem: Diagnostic, function: str = "") -> Stub:
    """The stub node of ``layer``, whose conversion failed with ``problem``."""
    record = layer.record
    types = record.get("nnet.cnn.layer.mixin.Learnable.LearnablesTypes")
    learnable_names = set(types) if isinstance(types, (list, dict)) else set()
    params: dict[str, np.ndarray] = {}
    properties: list[tuple[str, object]] = []
    learnable: list[str] = []
    dropped: list[str] = []
    fields = record.fields
    if function:  # only the variables its function captured
        fields = captured_variables(record)
    for key, value in fields.items():
        if key in _SKIP or "." in key:
            continue
        attr = attribute(key)
        arr = _numeric(value)
        if attr is None:
            dropped.append(key)
        elif arr is not None:
            kept = arr.astype(bool if arr.dtype.kind == "b" else np.float32)
            params[attr] = np.ascontiguousarray(kept)
            properties.append((key, tuple(int(s) for s in arr.shape)))
            if key in learnable_names:
                learnable.append(attr)
        elif (plain := _plain(value)) is not None:
            properties.append((key, plain))
        else:
            dropped.append(key)
    outputs = record.get("nnet.layer.Layer.PrivateOutputs")
    port_names = (
        tuple(str(o) for o in outputs)
        if isinstance(outputs, list) and outputs
        else ("out",)
    )
    inputs = record.get("nnet.layer.Layer.PrivateInputs")
    input_names = (
        tuple(str(i) for i in inputs)
        if isinstance(inputs, list) and len(inputs) == len(layer.inputs)
        else tuple(f"in{i + 1}" for i in range(len(layer.inputs)))
    )
    first = layer.in_types[0] if layer.in_types else TensorType(channels=1)
    description = function or layer.text("Description", "")
    return Stub(
        **layer.common(),
        module=Call(""),  # filled in by finish() once the class is named
        params=params,
        stub_class=function or layer.classname.rsplit(".", 1)[-1],
        description=description,
        learnable=tuple(learnable),
        properties=tuple(properties),
        dropped=tuple(dropped),
        port_names=port_names,
        input_names=input_names,
        out_types=(first,) * len(port_names),
        refusal=problem,
    )


def function_name(layer: Layer) -> str:
    """A functionLayer's function: 'zeropad' for a named one, else its text."""
    if layer.classname != "nnet.cnn.layer.FunctionLayer":
        return ""
    handle = layer.raw("PredictFcn")
    text = handle.text if isinstance(handle, FunctionHandle) and handle.text else ""
    text = (text or layer.text("Description", "")).strip()
    m = re.fullmatch(r"@\s*([A-Za-z]\w*(?:\.\w+)*)", text)
    return m.group(1).rsplit(".", 1)[-1] if m else text or "function"


def captured_variables(record: MatObject) -> dict[str, np.ndarray]:
    """Numeric variables a functionLayer's anonymous function captured."""
    return captured(_workspace(record.get("PredictFcn")))


def captured(value: Any) -> dict[str, np.ndarray]:
    """Numeric workspace variables an anonymous function handle captured."""
    found: dict[str, np.ndarray] = {}
    if isinstance(value, MatObject):
        value = value.fields
    if isinstance(value, dict):
        for key, item in value.items():
            arr = _numeric(item)
            if arr is not None and key.isidentifier():
                found[key] = arr
            else:
                found.update(captured(item))
    elif isinstance(value, list):
        for item in value:
            found.update(captured(item))
    return found


def _workspace(value: Any) -> Any:
    """The 'workspace' entry of a saved function handle (None if absent)."""
    if isinstance(value, dict):
        if "workspace" in value:
            return value["workspace"]
        for item in value.values():
            if (found := _workspace(item)) is not None:
                return found
    if isinstance(value, list):
        for item in value:
            if (found := _workspace(item)) is not None:
                return found
    return None


# --------------------------------------------------------------------------
# Output sizes from the consumers

COMBINE = {
    "nnet.cnn.layer.AdditionLayer": True,  # all inputs alike
    "nnet.cnn.layer.MultiplicationLayer": True,
    "nnet.cnn.layer.DepthConcatenationLayer": False,  # channels may differ
}


def refine(layer: Layer, types: dict[Any, TensorType]) -> dict[str, Stub]:
    """Better output sizes for stubs that ``layer`` consumes directly.

    Evidence, in order: a fullyConnectedLayer's InputSize (its weights'
    columns) gives the channel count of a non-spatial stub output; a
    combining layer's other, non-stub inputs give the sizes the stub must
    have (its channels too when the inputs are added or multiplied).
    """
    changed: dict[str, Stub] = {}
    for k, (port, src) in enumerate(zip(layer.inputs, layer.sources, strict=True)):
        if not isinstance(src, Stub) or src.assumption != SAME_AS_INPUT:
            continue
        current = layer.in_types[k]
        new, why = current, ""
        if layer.classname == "nnet.cnn.layer.FullyConnectedLayer":
            size = layer.raw("InputSize")
            w = layer.learnable("Weights")
            dims = np.asarray(size).ravel() if isinstance(size, np.ndarray) else ()
            n = int(dims[0]) if len(dims) == 1 else 0
            n = n or (int(w.shape[1]) if w is not None and w.ndim == 2 else 0)
            flat = int(np.prod(current.spatial or (1,))) * current.channels
            if len(dims) == 3 and w is not None and w.ndim == 4:
                # an older release's H×W×C×O kernel fixes the input's H×W×C
                h, wd, c = (int(d) for d in w.shape[:3])
                if (h, wd) != current.spatial or c != current.channels:
                    new = TensorType(spatial=(h, wd), channels=c)
                    why = (
                        f"{h}×{wd}×{c}, from the weights of the following "
                        f"{doc(layer.name)}"
                    )
            elif n and n != flat:
                new = TensorType(channels=n, time=current.time)
                why = f"{n} channels, from the InputSize of the following {doc(layer.name)}"
        elif layer.classname in COMBINE:
            others = [
                t
                for t, s in zip(layer.in_types, layer.sources, strict=True)
                if not isinstance(s, Stub)
            ]
            if others:
                ref = others[0]
                channels = (
                    ref.channels if COMBINE[layer.classname] else current.channels
                )
                new = dataclasses.replace(ref, channels=channels)
                why = f"sized like the other inputs of the following {doc(layer.name)}"
        if new != current:
            outs = list(src.out_types)
            outs[port.index] = new
            changed[src.name] = dataclasses.replace(
                src, out_types=tuple(outs), assumption=why
            )
    return changed


# --------------------------------------------------------------------------
# Naming the classes


def finish(net: Network) -> Network:
    """Give each stubbed MATLAB class one Python class name and point its
    layers' constructor calls at it."""
    from codegen.naming import class_name

    names: dict[str, str] = {}
    taken: set[str] = set()
    nodes: list[Node] = []
    for node in net.nodes:
        if isinstance(node, Stub):
            if node.stub_class not in names:
                anonymous = not node.stub_class.isidentifier()
                base = class_name(f"{node.name}_fn" if anonymous else node.stub_class)
                name, n = base, 1
                while name in taken or name == net.class_name:
                    n += 1
                    name = f"{base}{n}"
                taken.add(name)
                names[node.stub_class] = name
            py = names[node.stub_class]
            kwargs = tuple((attribute(k) or k, v) for k, v in node.properties)
            node = dataclasses.replace(node, module=Call(py, (), kwargs))
        nodes.append(node)
    return _with_note(dataclasses.replace(net, nodes=tuple(nodes)))


NOTE = "Stubs to write by hand"


def _with_note(net: Network) -> Network:
    """The docstring's one sentence listing the stubs left to write."""
    notes = tuple(n for n in net.notes if not n.startswith(NOTE))
    listed = "; ".join(
        f"{py} ({', '.join(doc(n.name) for n in group)})"
        for py, group in groups(net).items()
        if not group[0].custom
    )
    if listed:
        notes += (
            f"{NOTE} (the .mat file holds no code for them; their forward() raises "
            f"NotImplementedError): {listed}.",
        )
    return dataclasses.replace(net, notes=notes)
    return net


def stubs(net: Network) -> list[Stub]:
    return [n for n in net.nodes if isinstance(n, Stub)]


def groups(net: Network) -> dict[str, list[Stub]]:
    """Stubs by generated class, in network order."""
    out: dict[str, list[Stub]] = {}
    for node in stubs(net):
        out.setdefault(node.module.func, []).append(node)
    return out


def warning(net: Network) -> str:
    """One grouped sentence per stubbed class, for the command line."""
    lines = []
    for py, nodes in groups(net).items():
        if nodes[0].custom:
            continue
        names = ", ".join(doc(n.name) for n in nodes[:6]) + (
            " ..." if len(nodes) > 6 else ""
        )
        what = nodes[0].stub_class
        lines.append(
            f"{py} ({what}): {len(nodes)} layer{'s' if len(nodes) != 1 else ''} ({names})"
        )
    if not lines:
        return ""
    return (
        "these layers cannot be translated and are stubs in model.py; their forward() "
        "raises NotImplementedError until you write it:\n  " + "\n  ".join(lines)
    )


# --------------------------------------------------------------------------
# The class written into model.py


def _annotation(value: object, is_shape: bool) -> str:
    if is_shape:
        return "tuple[int, ...]"
    if isinstance(value, tuple):
        return "tuple[str, ...]"
    return "str"


def _sizes(t: TensorType) -> str:
    shape = ", ".join(map(str, t.torch_shape))
    return f"MATLAB {t.matlab_format} {t.matlab}, PyTorch ({shape})"


def class_source(py: str, nodes: list[Stub]) -> str:
    """Source of the editable class for the layers ``nodes`` (one MATLAB class)."""
    from codegen.render import lit

    first = nodes[0]
    anonymous = first.stub_class != first.short_class
    what = (
        f"functionLayer {doc(first.stub_class)}"
        if anonymous
        else f"layer class {doc(first.short_class)}"
    )
    used = ", ".join(doc(n.name) for n in nodes)
    prose = [
        f"MATLAB {what}: a stub to complete by hand.",
        "",
        f"Used by {used}. The .mat file holds this layer's property values, not its code.",
    ]
    if first.description and not anonymous:
        prose.append(f"MATLAB Description: {doc(first.description)}.")
    shapes = {
        k
        for k, v in first.properties
        if isinstance(v, tuple)
        and all(isinstance(i, int) for i in v)
        and attribute(k) in first.params
    }
    if first.params:
        learn = ", ".join(first.learnable) or "none"
        source = "its function captured" if anonymous else "properties"
        prose.append(
            f"Numeric {source} are tensors in MATLAB's layout (sizes as MATLAB "
            "stored them, column-major), filled from weights.pt; the constructor "
            "receives their sizes. Learnable (nn.Parameter), as the file's "
            f"LearnablesTypes lists them: {learn}; the others are buffers."
        )
    if first.dropped:
        prose.append(
            f"Not carried over (no Python value): {', '.join(map(doc, first.dropped))}."
        )
    lines = [f"class {py}(nn.Module):", '    """' + prose[0]]
    lines += [f"    {p}".rstrip() for p in prose[1:]]
    lines.append('    """')
    if first.properties:
        lines += ["", "    def __init__(", "        self,", "        *,"]
        for key, value in first.properties:
            attr = attribute(key) or key
            noqa = "  # noqa: N803" if attr != attr.lower() else ""
            lines.append(f"        {attr}: {_annotation(value, key in shapes)},{noqa}")
        lines += ["    ) -> None:", "        super().__init__()"]
        for key, _value in first.properties:
            attr = attribute(key) or key
            if key in shapes:
                arr = first.params[attr]
                dtype = ", dtype=torch.bool" if arr.dtype == np.bool_ else ""
                kind = "nn.Parameter" if attr in first.learnable else "nn.Buffer"
                lines.append(
                    f"        self.{attr} = {kind}(torch.zeros({attr}{dtype}))"
                )
            else:
                lines.append(f"        self.{attr} = {attr}")
    n_in = len(first.inputs)
    args = ["x"] if n_in == 1 else [f"x{i + 1}" for i in range(n_in)]
    multi = len(first.port_names) > 1
    returns = "tuple[torch.Tensor, ...]" if multi else "torch.Tensor"
    signature = ", ".join(f"{a}: torch.Tensor" for a in args)
    lines += ["", f"    def forward(self, {signature}) -> {returns}:"]
    doc_lines = [
        "Sizes the converter knows (N: batch, T: time steps):",
    ]
    by_sizes: dict[str, list[str]] = {}  # layers with the same sizes share a line
    for n in nodes:
        ins = "; ".join(
            f"{a} ({doc(m)}): {_sizes(t)}"
            for a, m, t in zip(args, n.input_names, n.in_types, strict=True)
        )
        outs = "; ".join(
            f"{doc(p)}: {_sizes(t)}"
            for p, t in zip(n.port_names, n.out_types, strict=True)
        )
        text = plain_sizes(f"in {ins}. Out {outs}, {n.assumption}.")
        by_sizes.setdefault(text, []).append(doc(n.name))
    doc_lines += [f"{', '.join(names)}: {text}" for text, names in by_sizes.items()]
    if multi:
        doc_lines.append(
            f"Return the outputs in MATLAB's order: {', '.join(map(doc, first.port_names))}."
        )
    lines.append('        """' + doc_lines[0])
    for text in doc_lines[1:]:
        lines += ["", f"        {text}"]
    lines.append('        """')
    got = ", ".join(f"{{tuple({a}.shape)}}" for a in args)
    raw = f"functionLayer {first.stub_class}" if anonymous else first.short_class
    names = ", ".join(n.name for n in nodes)
    message = (
        f"{py} (MATLAB {raw}, layer{'s' if len(nodes) > 1 else ''} {names}) "
        "is a stub: write its forward() in model.py"
    )
    lines += [
        "        msg = (",
        f"            {lit(message)}",
        f'            f" (called with {got})."',
        "        )",
        "        raise NotImplementedError(msg)",
    ]
    return "\n".join(lines)


def class_sources(net: Network) -> list[str]:
    return [
        nodes[0].custom or class_source(py, nodes) for py, nodes in groups(net).items()
    ]


# --------------------------------------------------------------------------
# --custom-layers and --strict


def load_custom(path: Path) -> dict[str, str]:
    """Top-level classes of the user's file: name → source."""
    try:
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text, filename=str(path))
    except (OSError, UnicodeDecodeError, SyntaxError) as exc:
        raise ConversionError(
            f"--custom-layers {path}: cannot be read as Python ({exc}).",
            hint="Give a Python file of nn.Module classes named after the MATLAB layer classes.",
        ) from None
    return {
        node.name: ast.get_source_segment(text, node) or ""
        for node in tree.body
        if isinstance(node, ast.ClassDef)
    }


def use_custom(net: Network, classes: dict[str, str]) -> Network:
    """Paste the user's classes in place of the stubs they implement.

    A class matches by the MATLAB class name (or function name) or by the
    stub's generated name; it is renamed to the generated name, so the file
    stays lint-clean whatever the MATLAB spelling.
    """
    nodes: list[Node] = []
    for node in net.nodes:
        if isinstance(node, Stub):
            py = node.module.func
            name = node.stub_class if node.stub_class in classes else py
            if name in classes:
                source = re.sub(
                    rf"^class\s+{re.escape(name)}\b",
                    f"class {py}",
                    classes[name],
                    count=1,
                )
                node = dataclasses.replace(node, custom=source)
        nodes.append(node)
    return _with_note(dataclasses.replace(net, nodes=tuple(nodes)))


def refuse(net: Network) -> None:
    """--strict: refuse the stubs no --custom-layers class implements."""
    left = [n.refusal for n in stubs(net) if not n.custom and n.refusal is not None]
    if left:
        raise ConversionError(
            f"{net.source}: variable '{net.variable}' cannot be converted: "
            f"{len(left)} layer(s) cannot be converted.",
            diagnostics=tuple(left),
            hint="Nothing was written (--strict). Without --strict they become stubs "
            "to write by hand; --custom-layers FILE supplies their classes.",
        )


def stand_ins(model: Any, net: Network) -> None:
    """Replace each stub's forward on ``model`` by zeros of its assumed
    output sizes, so the check runs the rest of the network."""
    import torch

    for node in stubs(net):
        if node.custom:  # the user's class: checked like any layer
            continue
        module = getattr(model, node.ident)

        def zeros(*xs: Any, node: Stub = node) -> Any:
            n = xs[0].shape[0] if xs else 1
            timed = [(x, t) for x, t in zip(xs, node.in_types, strict=False) if t.time]
            steps = 1
            if timed:  # (N, T, C...), (N, C, T) or attention scores (N, heads, T, T)
                x, t = timed[0]
                steps = x.shape[2 if t.time_last or t.heads else 1]
            outs = []
            for t in node.out_types:
                shape = [n, *(steps if s == "T" else s for s in t.torch_shape[1:])]
                outs.append(torch.zeros(shape))
            return outs[0] if len(outs) == 1 else tuple(outs)

        module.forward = zeros


def unimplemented(model: Any, net: Network) -> list[Stub]:
    """Stubs of ``net`` whose class in ``model`` still raises NotImplementedError
    (probed on zeros of the sizes the converter knows)."""
    import torch

    left = []
    for node in stubs(net):
        module = getattr(model, node.ident, None)
        xs = []
        for t in node.in_types:
            shape = [1, *(4 if s == "T" else s for s in t.torch_shape[1:])]
            xs.append(torch.zeros([int(s) for s in shape]))
        try:
            with torch.no_grad():
                module(*xs)  # type: ignore[misc]
        except NotImplementedError:
            left.append(node)
        except Exception:
            continue
    return left
