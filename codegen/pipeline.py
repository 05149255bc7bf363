"""convert(), pass by pass: read → graph → parse → name → plan → render →
format → check → write. ``inspect`` and ``verify`` share the front half
(``load_graph``, ``build``)."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import keyword
import re
import textwrap
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from codegen import graph as graph_mod
from codegen import matconvnet, progress, selfcheck, stubs, untrusted
from codegen.budget import check_untrained_size
from codegen.diagnostics import ConversionError
from codegen.format import format_later, format_source, top_level_names
from codegen.graph import LayerGraph
from codegen.helpers import helper_names
from codegen.ir import Network, Normalization
from codegen.matfile import (
    DETECTOR_CLASSES,
    NETWORK_CLASSES,
    SHALLOW_CLASSES,
    MatObject,
    Variable,
    list_and_load,
    list_variables,
)
from codegen.naming import MODULE_ATTRIBUTES, name_network, reserved_names
from codegen.parse import parse
from codegen.plan import ForwardPlan, plan_forward
from codegen.render import WEIGHTS_NAME, converter_names, render
from codegen.text import doc, plain_sizes
from codegen.weights import Serialized, Weights

MODEL_NAME = "model.py"


@dataclass
class Result:
    """What a conversion produced (or would produce, before writing)."""

    network: Network
    plan: ForwardPlan
    code: str
    # serialized once, into a temporary file, as the regeneration compares and
    # writes them (bytes where a caller builds a Result itself)
    weights: bytes | Serialized
    notes: list[str] = field(default_factory=list)
    written: tuple[Path, ...] = ()


@dataclass(frozen=True)
class Loaded:
    """What the front half reads: the file, the chosen variable and its graph."""

    path: Path
    variable: str
    graph: LayerGraph
    record: Any  # the decoded variable (MatConvNet's meta is read from it)


def load_graph(path: Path, var: str | None = None) -> Loaded:
    """read → graph: the network variable of ``path`` and its layer graph."""
    path = Path(path)
    top, _, inner = (var or "").partition(".")
    var = top or None
    variables, records = list_and_load(path, lambda found: _to_read(found, var))
    name = choose_variable(path, var, variables, records)
    record = records[name] if name in records else matconvnet.load(path, name)
    if inner:
        record = _field(record, path, name, inner)
        name = f"{name}.{inner}"
    elif nested := nested_networks(record):
        raise ConversionError(
            f"{path.name}: variable '{name}' is a {record.classname} that holds "
            f"{len(nested)} networks, saved as structs: {', '.join(nested)}.",
            hint="Choose one with --var, e.g. --var "
            f"{name}.{nested[0]}; convert the other the same way.",
        )
    graph = graph_mod.build(record, f"{path.name}: variable '{name}'")
    return Loaded(path=path, variable=name, graph=graph, record=record)


def nested_networks(record: Any) -> list[str]:
    """The fields of a detector that holds its networks as structs."""
    if not isinstance(record, MatObject) or record.classname not in DETECTOR_CLASSES:
        return []
    return [k for k, v in record.fields.items() if graph_mod.is_branched_struct(v)]


def _field(record: Any, path: Path, name: str, inner: str) -> Any:
    """``--var detector.Network``: a network inside a variable."""
    value = record
    for key in inner.split("."):
        fields = value.fields if isinstance(value, MatObject) else value
        if not isinstance(fields, dict) or key not in fields:
            have = ", ".join(sorted(fields)) if isinstance(fields, dict) else ""
            raise ConversionError(
                f"{path.name}: variable '{name}' has no field '{inner}'.",
                hint=f"Its fields: {have}." if have else "",
            )
        value = fields[key]
    return value


def build(loaded: Loaded, class_name: str | None = None) -> tuple[Network, ForwardPlan]:
    """parse → name → plan: the named IR and its forward plan."""
    net = parse(
        loaded.graph,
        source=loaded.path.name,
        variable=loaded.variable,
        class_name=class_name,
    )
    net = name_network(matconvnet.finish(net, loaded.record))
    return net, plan_forward(net)


# --------------------------------------------------------------------------
# Finding the network in a file


def is_network_variable(v: Variable) -> bool:
    cls = v.classname
    return (
        cls in NETWORK_CLASSES
        or cls in DETECTOR_CLASSES
        or cls.startswith("nnet.cnn.layer.")
    )


def _to_read(variables: list[Variable], var: str | None) -> list[str]:
    """The variables choose_variable will look into, read with the listing:
    the named one, else the one network, else every struct (MatConvNet)."""
    if var is not None:
        return [v.name for v in variables if v.name == var]
    networks = [v.name for v in variables if is_network_variable(v)]
    if networks:
        return networks if len(networks) == 1 else []
    return [v.name for v in variables if v.classname in matconvnet.STRUCT_CLASSES]


def choose_variable(
    path: Path,
    var: str | None,
    variables: list[Variable] | None = None,
    records: dict[str, Any] | None = None,
) -> str:
    """The network variable's name; ``records`` are variables already read."""
    if variables is None:
        variables = list_variables(path)
    read = records or {}

    def holds_network(v: Variable) -> bool:
        if v.name in read:
            return v.classname in matconvnet.STRUCT_CLASSES and bool(
                matconvnet.kind(read[v.name])
            )
        return matconvnet.holds_network(path, v)

    candidates = [v for v in variables if is_network_variable(v)]
    candidates = candidates or [v for v in variables if holds_network(v)]
    listing = ", ".join(f"'{v.name}' ({v.classname})" for v in candidates)
    if var is not None:
        found = [v for v in variables if v.name == var]
        if not found:
            raise ConversionError(
                f"{path.name} has no variable '{var}'.",
                hint=(
                    f"Networks in the file: {listing}."
                    if candidates
                    else _no_network_hint(variables)
                ),
            )
        if not is_network_variable(found[0]) and not holds_network(found[0]):
            raise ConversionError(
                f"{path.name}: variable '{var}' is a {found[0].classname}, not a network.",
                hint=f"Networks in the file: {listing}." if candidates else "",
            )
        return var
    if len(candidates) == 1:
        return candidates[0].name
    if not candidates:
        shallow = [v for v in variables if v.classname in SHALLOW_CLASSES]
        if shallow:
            raise ConversionError(
                f"{path.name}: variable '{shallow[0].name}' is a shallow neural network "
                "(class 'network', from feedforwardnet/patternnet/fitnet), not a Deep "
                "Learning Toolbox network.",
                hint="mat2torch converts SeriesNetwork, DAGNetwork, dlnetwork, LayerGraph "
                "and layer arrays. In MATLAB, rebuild the model with layers "
                "(featureInputLayer, fullyConnectedLayer, ...) and save that.",
            )
        raise ConversionError(
            f"{path.name} holds no network.", hint=_no_network_hint(variables)
        )
    raise ConversionError(
        f"{path.name} holds {len(candidates)} networks: {listing}.",
        hint="Choose one with --var NAME.",
    )


def _no_network_hint(variables: list[Variable]) -> str:
    shown = ", ".join(f"'{v.name}' ({v.classname})" for v in variables[:10])
    more = f" and {len(variables) - 10} more" if len(variables) > 10 else ""
    found = f"It holds {shown}{more}." if variables else "It holds no variables."
    return f"{found} Save the network itself: save('net.mat','net')."


# --------------------------------------------------------------------------
# Conversion


def convert(
    path: Path,
    out_dir: Path | None = None,
    *,
    var: str | None = None,
    class_name: str | None = None,
    force: bool = False,
    check: bool = True,
    strict: bool = False,
    custom_layers: Path | None = None,
) -> Result:
    """Convert ``path``; write model.py and weights.pt into ``out_dir`` if given."""
    path = Path(path)
    if class_name is not None:
        validate_class_name(class_name)
    if out_dir is not None and not force:
        from codegen.regenerate import refuse_foreign

        refuse_foreign(Path(out_dir))  # a model.py mat2torch did not write
    # What the later passes import, while the reader's child works; black and
    # libcst only if it is still working (the format child imports black
    # otherwise, and libcst only merges into an existing model.py).
    merging = out_dir is not None and (Path(out_dir) / MODEL_NAME).exists()
    with untrusted.meanwhile(_import_torch, _import_black, *[_import_libcst] * merging):
        loaded = load_graph(path, var)
    progress.stage("read", f"{progress.megabytes(path.stat().st_size)}")
    net, plan = build(loaded, class_name)
    del loaded  # the decoded MATLAB records: the IR holds what it needs
    progress.stage("parse", f"{len(net.nodes)} layers")
    if custom_layers is not None:
        net = stubs.use_custom(net, stubs.load_custom(Path(custom_layers)))
    if strict:
        stubs.refuse(net)
    result = generate(net, plan, check=check, near=out_dir)
    if out_dir is not None:
        from codegen.regenerate import regenerate

        result.written = regenerate(Path(out_dir), result, force=force)
        progress.stage("write", f"weights {progress.megabytes(len(result.weights))}")
    return result


def _import_torch() -> None:
    import torch  # noqa: F401


def _import_black() -> None:
    import black  # noqa: F401


def _import_libcst() -> None:
    import libcst  # noqa: F401


def validate_class_name(name: str) -> None:
    if (
        not name.isidentifier()
        or not name.isascii()
        or name in reserved_names() | MODULE_ATTRIBUTES
    ):
        raise ConversionError(
            f"--class-name {name!r} is not a usable Python class name.",
            hint="Use letters, digits and underscores, starting with a letter, e.g. MyNet.",
        )
    if keyword.iskeyword(name):
        raise ConversionError(f"--class-name {name!r} is a Python keyword.")


def generate(
    net: Network,
    plan: ForwardPlan,
    *,
    check: bool = True,
    near: Path | None = None,
) -> Result:
    """Source and weights for ``net``.

    The generated module is imported once here: it tells which state_dict
    entries the .mat file could not fill (untrained layers get PyTorch's
    default initialization, seeded) and, with ``check``, runs one forward pass
    so a broken conversion never reaches the disk. The weights archive is
    serialized on ``near``'s filesystem (the output folder), to be linked there.
    """
    notes = [*net.notes, *(note for node in net.nodes for note in node.notes)]
    state = net.state()
    nan = sorted(
        {
            k.split(".")[0]
            for k, v in state.items()
            # min propagates NaN without a mask the size of the weights
            if v.dtype.kind == "f" and v.size and np.isnan(np.min(v))
        }
    )
    if nan:
        notes.append(
            f"The .mat file holds NaN weights for {', '.join(nan)}; copied as they are."
        )
    raw = _source(net, plan, notes)
    with format_later(raw) as formatted:  # black runs while the checks do
        progress.stage("render")
        check_untrained_size(net, raw, state)
        import torch

        model = _instantiate(net, raw, state)
        missing = sorted(set(model.state_dict()) - set(state))
        if missing:
            net = dataclasses.replace(net, untrained=untrained_layers(model, state))
            notes.append(
                f"The .mat file holds no trained weights for "
                f"{', '.join(net.untrained)}; {WEIGHTS_NAME} holds PyTorch's "
                "default initialization (seed 0) for them."
            )
            torch.manual_seed(0)
            defaults = type(model)().state_dict()
            for key, value in defaults.items():
                if key in missing:
                    state[key] = value.detach().cpu().numpy()
        tensors = Weights(state)  # laid out once, for the check and the file
        # Serializing is mostly copying (it lets go of the GIL): it runs
        # beside the check's forward pass.
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            serialized = pool.submit(tensors.serialize, near)
            if check:
                _run_once(net, model, tensors.tensors)
                progress.stage("check")
            weights = serialized.result()
        progress.stage("weights")
        code = format_source(_source(net, plan, notes)) if missing else formatted()
        progress.stage("format", f"{len(code.splitlines())} lines")
    return Result(network=net, plan=plan, code=code, weights=weights, notes=notes)


def untrained_layers(model: Any, state: dict[str, Any]) -> tuple[str, ...]:
    """Attributes of ``model`` whose state the .mat file did not fill."""
    return tuple(
        sorted({k.split(".")[0] for k in set(model.state_dict()) - set(state)})
    )


def _source(net: Network, plan: ForwardPlan, notes: list[str]) -> str:
    """The module as rendered (before black), its top-level names checked."""
    code = render(net, plan, about=describe(net, plan, notes), class_doc=class_doc(net))
    stray = (
        top_level_names(code)
        - {
            net.class_name,
            "WEIGHTS_FILE",
            "MATLAB_NAMES",
            "NOT_LAYER_OUTPUTS",
            "load_model",
            "_keep",
            "BATCHNORM_FOLDS",
        }
        - _allowed_extras(net)
    )
    if stray:
        raise ConversionError(
            f"internal error: the generated module defines unexpected names {sorted(stray)}.",
            hint="Please report this with the .mat file.",
        )
    return code


def _instantiate(net: Network, code: str, state: dict[str, np.ndarray]) -> Any:
    module = types.ModuleType("mat2torch_generated")
    module.__file__ = MODEL_NAME
    exec(compile(code, MODEL_NAME, "exec"), module.__dict__)
    model = selfcheck.build_meta(getattr(module, net.class_name))
    expected = model.state_dict()
    unknown = sorted(set(state) - set(expected))
    wrong = sorted(
        k for k in state if k in expected and tuple(expected[k].shape) != state[k].shape
    )
    if (unknown or wrong) and any(n.custom for n in stubs.stubs(net)):
        raise ConversionError(
            "the --custom-layers classes do not hold the tensors the .mat file "
            f"stores for them (missing {unknown[:5]}, shape mismatch {wrong[:5]}).",
            hint="Register each numeric MATLAB property as a parameter or buffer "
            "of the same name and size (the constructor receives the sizes).",
        )
    if unknown or wrong:
        raise ConversionError(
            "internal error: the weights do not fit the generated module "
            f"(unexpected {unknown[:5]}, shape mismatch {wrong[:5]}).",
            hint="Please report this with the .mat file.",
        )
    return model


def _run_once(net: Network, model: Any, state: dict[str, Any]) -> None:
    loaded = selfcheck.load_strict(type(model), state)
    stubs.stand_ins(loaded, net)  # the check skips only the stubbed layers
    shapes = [
        (tuple(_example(s.type, example_steps(net, s))), len(s.type.spatial))
        for s in net.inputs
    ]
    reducible = not any(n.fixes_size for n in net.nodes)
    selfcheck.prove_runs(loaded, shapes, net.activation_size(), reducible=reducible)


def _allowed_extras(net: Network) -> set[str]:
    extras = {"CLASSES", "CLASS_WEIGHTS", "from_matlab", "loss_fn", "LEARN_FACTORS"}
    extras |= {"GATE_FACTORS", "_gate_factors"}
    extras |= {f"CLASSES_{o.ident.upper()}" for o in net.outputs}
    extras |= {f"CLASS_WEIGHTS_{o.ident.upper()}" for o in net.outputs}
    extras |= {f"from_matlab_{i.ident}" for i in net.inputs}
    extras |= {name for name, _ in net.constants}
    extras |= helper_names()
    extras |= {n.module.func for n in stubs.stubs(net)}
    return extras


def describe(net: Network, plan: ForwardPlan, notes: list[str]) -> list[str]:
    """The module docstring's paragraphs: inputs, outputs, losses, notes."""
    paragraphs: list[str] = []
    converters = converter_names(net)
    for arg, spec in zip(plan.inputs, net.inputs, strict=True):
        t = spec.type
        shape = ", ".join(map(str, t.torch_shape))
        text = (
            f"Input {arg}: float32 ({shape}); MATLAB layer {doc(spec.layer)} takes "
            f"{_matlab_layout(t.format)} arrays of size {t.matlab} "
            f"({converters[spec.layer]}() converts them)."
        )
        if t.time:
            text += " Batch sequences of unequal length zero-padded at the end, as MATLAB does."
        kind = getattr(net.node(spec.layer), "normalization", Normalization.NONE)
        if kind is not Normalization.NONE:
            text += (
                f" forward() applies the input layer's '{kind.value}' normalization "
                "(normalize_input=False skips it)."
            )
        paragraphs.append(text)
    for i, out in enumerate(net.outputs):
        t = out.type
        shape = ", ".join(map(str, t.torch_shape))
        which = f"Output {i + 1}" if len(net.outputs) > 1 else "Output"
        text = f"{which}: ({shape}), MATLAB layer {doc(out.port.layer)}."
        if t.heads:
            text = (
                f"{which}: ({shape}), the attention scores of MATLAB layer "
                f"{doc(out.port.layer)} (its 'scores' output): softmax weights "
                "after masking as (N, heads, queries, keys). MATLAB returns the "
                f"unformatted keys×queries×heads×N array ({t.matlab}×N): this "
                "tensor permuted by (3, 2, 1, 0)."
            )
        if out.classes:
            const = "CLASSES" if i == 0 else f"CLASSES_{out.ident.upper()}"
            text += f" Channel i is class {const}[i] (MATLAB's order)."
        if out.loss:
            text += " " + out.loss
        paragraphs.append(text)
    paragraphs += notes
    return [
        textwrap.fill(
            plain_sizes(p), width=80, break_long_words=False, break_on_hyphens=False
        )
        for p in paragraphs
    ]


def _matlab_layout(fmt: str) -> str:
    return {
        "SSC": "H×W×C(×N)",
        "SSSC": "H×W×D×C(×N)",
        "C": "C(×N)",
        "CT": "C×T",
        "SC": "L×C(×N)",
    }.get(fmt, fmt)


def class_doc(net: Network) -> str:
    # no layer count: inserting a layer must not change an unrelated line
    shown = re.sub(r"[^\w .()]", "?", net.matlab_class)  # from the file: keep it inert
    return f"MATLAB {shown}, layer for layer."


def example_steps(net: Network, spec: Any) -> int:
    """A sequence length every layer accepts (pooling may shorten it a lot)."""
    longest = min((n.max_steps for n in net.nodes if n.max_steps), default=128)
    return max(getattr(net.node(spec.layer), "min_length", 1), min(128, longest))


def _example(t: Any, steps: int) -> list[int]:
    return [1] + ([steps] if t.time else []) + [t.channels, *t.spatial]
