"""Render a Network into model.py source (before black).

The jinja environment is strict (undefined names fail), every literal goes
through ``lit`` and every string taken from the .mat file reaches the output
only through ``repr`` (code, comments) or ``doc`` (docstrings).
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import numpy as np

from codegen.ir import Call, ModuleNode, Network, Node, Pad, Port

WEIGHTS_NAME = "weights.pt"


def templates_dir() -> Path:
    """``templates/`` of a checkout, or its copy inside an installed wheel."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "templates", here.parent / "templates"):
        if (candidate / "model.py.jinja").is_file():
            return candidate
    raise FileNotFoundError("mat2torch templates are missing from this installation")


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters.update(lit=lit, call=call, padded=padded, cropped=cropped, doc=doc)
    return env


# --------------------------------------------------------------------------
# The one literal printer


def lit(value: Any) -> str:
    """Python source for a literal value; deterministic and safe."""
    if isinstance(value, (bool, np.bool_)):
        return "True" if value else "False"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if math.isnan(v):
            return "math.nan"
        if math.isinf(v):
            return "math.inf" if v > 0 else "-math.inf"
        return repr(v)
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, (tuple, list)):
        items = ", ".join(lit(v) for v in value)
        if isinstance(value, tuple) and len(value) == 1:
            return f"({items},)"
        return f"({items})" if isinstance(value, tuple) else f"[{items}]"
    if isinstance(value, Call):
        return call(value)
    raise TypeError(f"no literal form for {type(value).__name__}")


def call(c: Call) -> str:
    parts = [lit(a) for a in c.args] + [f"{k}={lit(v)}" for k, v in c.kwargs]
    return f"{c.func}({', '.join(parts)})"


def padded(expr: str, pad: Pad) -> str:
    """``expr`` (a variable name) with explicit padding applied."""
    if not pad.needed:
        return expr
    amounts = lit(pad.amounts)
    if pad.same is not None:
        kernel, stride, dilation = pad.same
        args = [expr, lit(kernel), lit(stride)]
        if any(d != 1 for d in dilation):
            args.append(lit(dilation))
        amounts = f"same_padding({', '.join(args)})"
    if pad.mode == "symmetric":
        return f"pad_symmetric({expr}, {amounts})"
    extra = ""
    if pad.mode != "constant":
        extra = f", mode={lit(pad.mode)}"
    elif pad.value:
        extra = f", value={lit(pad.value)}"
    return f"F.pad({expr}, {amounts}{extra})"


def cropped(expr: str, crop: tuple[int, ...]) -> str:
    """Remove ``crop`` (F.pad order) from ``expr``: F.pad with negative sizes."""
    if not any(crop):
        return expr
    return f"F.pad({expr}, {lit(tuple(-c for c in crop))})"


def doc(text: str) -> str:
    """An untrusted string shown inside a docstring: its repr, made inert."""
    return repr(str(text)).replace("\\", "\\\\").replace('"', '\\"')


def trace(node: Node) -> str:
    short = re.sub(r"[^A-Za-z0-9_.]", "?", node.short_class)
    return f"{node.name!r} ({short})"


# --------------------------------------------------------------------------
# Forward planning


@dataclass
class Step:
    node: Node
    outs: list[str]  # one variable per output port; "_" for unused ports
    args: list[str]
    free: list[str] = field(default_factory=list)
    alias: str = ""  # the output, also used later, is kept as `alias = x`


def plan_forward(net: Network) -> tuple[list[str], list[Step], list[str]]:
    """Variable names for the forward pass, as a person would choose them.

    Values used by the very next statement live in ``x``; a value that is
    also needed later keeps a name after the layer (``stem_relu = x``, like
    the ``identity = x`` of a hand-written residual block); values needed
    only later are named after their layer (``<layer>_<port>`` for extra
    outputs). Named values, and ``x`` when it would otherwise linger, are
    deleted right after their last use; a ReLU or an addition that is the
    last reader of a fresh tensor overwrites it (``_in_place``).
    """
    nodes = {n.name: n for n in net.nodes}

    def resolve(port: Port) -> Port:
        node = nodes[port.layer]
        while node.elide and node.inputs:
            port = node.inputs[0]
            node = nodes[port.layer]
        return port

    steps = [n for n in net.nodes if not n.elide]
    end = len(steps)
    uses: dict[Port, list[int]] = {}
    for i, n in enumerate(steps):
        for p in n.inputs:
            uses.setdefault(resolve(p), []).append(i)
    for out in net.outputs:
        uses.setdefault(resolve(out.port), []).append(end)

    single_input = len(net.inputs) == 1
    in_x: Port | None = None  # the value x holds
    name_of: dict[Port, str] = {}
    defined_as: dict[Port, str] = {}
    plan: list[Step] = []
    last_use: dict[str, int] = {}

    def read(port: Port) -> str:
        return "x" if port == in_x else name_of[port]

    for i, n in enumerate(steps):
        args = [read(resolve(p)) for p in n.inputs]
        outs, alias = [], ""
        x_before = in_x
        for k in range(len(n.out_types)):
            port = Port(layer=n.name, index=k)
            users = uses.get(port, [])
            if k:
                name = f"{n.ident}_{n.port_names[k]}" if users else "_"
            elif users and users[0] == i + 1 and (n.inputs or single_input):
                name, in_x = "x", port
                if any(u != i + 1 for u in users):
                    alias = n.ident
                    name_of[port] = alias
            else:
                name = n.ident
            if name != "x":
                name_of.setdefault(port, name)
            defined_as[port] = name
            outs.append(name)
            tracked = alias if name == "x" else name
            if tracked and tracked != "_":
                later = [u for u in users if not (name == "x" and u == i + 1)]
                if later:
                    last_use[tracked] = max(later)
        step = Step(n, outs, args, alias=alias)
        if x_before is not None and in_x == x_before and "x" in args:
            # x's value died here but this step's result went elsewhere
            if max(uses.get(x_before, [end])) <= i:
                step.free.append("x")
                in_x = None
        plan.append(step)
    for name, idx in last_use.items():
        if idx < end:
            plan[idx].free.append(name)
    for i, step in enumerate(plan):
        ports = [resolve(p) for p in step.node.inputs]
        step.node = _in_place(step, [(nodes[p.layer], p, uses[p]) for p in ports], i)
        if getattr(step.node, "accumulate", False) and step.args[0] != "x":
            step.args.reverse()  # x += other; addition commutes exactly
    inputs = [defined_as[Port(layer=spec.layer)] for spec in net.inputs]
    returns = []
    for o in net.outputs:
        port = resolve(o.port)
        back = nodes[port.layer].out_types[port.index].time_last  # to N×T×C
        returns.append(read(port) + (".transpose(1, 2)" if back else ""))
    return inputs, plan, returns


# Modules whose output is a new tensor that their backward pass does not read:
# a ReLU or an addition may overwrite it, as torchvision's ResNet does.
_OVERWRITABLE = {
    f"nn.{kind}{d}d"
    for kind in ("Conv", "ConvTranspose", "BatchNorm")
    for d in (1, 2, 3)
} | {"nn.Linear"}


def _overwritable(node: Node) -> bool:
    if node.template in ("module", "padded", "linear"):
        return node.module.func in _OVERWRITABLE  # type: ignore[attr-defined]
    return node.template == "combine" and len(node.inputs) >= 2


def _in_place(step: Step, inputs: list[tuple[Node, Port, list[int]]], i: int) -> Node:
    """The step's node, made to overwrite its input where nothing else reads it.

    Saves one allocation per ReLU and per residual addition, which under
    glibc also saves the page faults of a heap regrown after trimming.
    ``inputs`` gives, per input, its producer, port and the steps reading it;
    a value read only by step ``i`` and made by an overwritable layer belongs
    to this step.
    """
    node = step.node
    owned = [uses == [i] and _overwritable(producer) for producer, _, uses in inputs]
    if node.template == "module" and node.module.func == "nn.ReLU" and owned[0]:
        module = node.module
        kwargs = (*module.kwargs, ("inplace", True))
        return dataclasses.replace(
            node, module=dataclasses.replace(module, kwargs=kwargs)
        )
    if (
        node.template == "combine"
        and node.op == "+"
        and len(node.inputs) == 2
        and not any(node.pres)
        and not node.out_types[0].time
        and step.outs[0] == "x"
        and "x" in step.args
        and owned[step.args.index("x")]
        and _type(inputs[step.args.index("x")]) == node.out_types[0]
    ):
        return dataclasses.replace(node, accumulate=True)
    return node


def _type(input: tuple[Node, Port, list[int]]) -> Any:
    producer, port, _ = input
    return producer.out_types[port.index]


# --------------------------------------------------------------------------
# Module text


@cache
def _macros(template: str) -> Any:
    return environment().get_template(f"layers/{template}.jinja").module


def render(net: Network, about: list[str], class_doc: str) -> str:
    env = environment()
    inputs, plan, returns = plan_forward(net)
    chosen = {step.node.name: step.node for step in plan}  # in-place variants
    inits = []
    for n in (chosen.get(n.name, n) for n in net.nodes):
        code = str(_macros(n.template).init(n)).strip()
        if code:
            inits.append({"trace": trace(n), "code": code})
    body = []
    for step in plan:
        code = str(_macros(step.node.template).forward(step.node, step.outs, step.args))
        if code.strip():
            body.append(code.strip())
        if step.alias:
            body.append(f"{step.alias} = x")
        if step.free:
            body.append(f"del {', '.join(sorted(step.free))}")
    helpers = [
        env.get_template(f"helpers/{h}.py.jinja").render().strip() for h in net.helpers
    ]
    names = converter_names(net)
    first = {}
    for spec in net.inputs:
        first.setdefault(names[spec.layer], spec)
    converters = [
        env.get_template("from_matlab.py.jinja").render(spec=spec, name=name).strip()
        for name, spec in first.items()
    ]
    signature = ", ".join(f"{name}: torch.Tensor" for name in inputs)
    returns_type = (
        "torch.Tensor"
        if len(returns) == 1
        else f"tuple[{', '.join('torch.Tensor' for _ in returns)}]"
    )
    outputs_with_classes = []
    for i, out in enumerate(net.outputs):
        if not out.classes:
            continue
        suffix = "" if i == 0 else f"_{out.ident.upper()}"
        outputs_with_classes.append(
            {
                "const": f"CLASSES{suffix}",
                "classes": out.classes,
                "weights": out.class_weights,
                "weights_const": f"CLASS_WEIGHTS{suffix}",
            }
        )
    code = "\n".join([*helpers, *converters, *body, *(b["code"] for b in inits)])
    hooked = [n for n in net.nodes if isinstance(n, ModuleNode) and n.hookable()]
    return env.get_template("model.py.jinja").render(
        net=net,
        layer_outputs=[(n.ident, n.name) for n in hooked],
        channels_first=tuple(n.ident for n in hooked if n.out_types[0].time_last),
        about=about,
        class_doc=class_doc,
        helpers=helpers,
        inits=inits,
        body=body,
        signature=signature,
        returns=", ".join(returns),
        returns_type=returns_type,
        normalizes=any(
            getattr(n, "normalization", "none") != "none" for n in net.nodes
        ),
        outputs_with_classes=outputs_with_classes,
        weights_name=WEIGHTS_NAME,
        converters=converters,
        uses_math=bool(re.search(r"\bmath\.", code)),
        uses_f=bool(re.search(r"\bF\.", code)),
    )


def converter_names(net: Network) -> dict[str, str]:
    """The from_matlab helper for each input layer: one per distinct format."""
    formats = {spec.type.format for spec in net.inputs}
    if len(formats) == 1:
        return {spec.layer: "from_matlab" for spec in net.inputs}
    return {spec.layer: f"from_matlab_{spec.ident}" for spec in net.inputs}
