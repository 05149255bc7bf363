"""Render a Network into model.py source (before black).

The jinja environment is strict (undefined names fail), every literal goes
through ``lit`` and every string taken from the .mat file reaches the output
only through ``repr`` (code, comments) or ``doc`` (docstrings).
"""

from __future__ import annotations

import math
import re
from contextvars import ContextVar
from enum import Enum
from functools import cache
from typing import TYPE_CHECKING, Any

import jinja2
import numpy as np

from codegen import stubs, training
from codegen.fusion import batchnorm_folds, fold_imports
from codegen.helpers import closure, templates_dir
from codegen.ir import (
    Call,
    ModuleNode,
    Network,
    Node,
    Normalization,
    Pad,
    PadMode,
    Relayout,
)
from codegen.text import doc

if TYPE_CHECKING:
    from codegen.plan import ForwardPlan

# Names of modules the rendered code used, collected while rendering.
_USES: ContextVar[set[str]] = ContextVar("uses")

WEIGHTS_NAME = "weights.pt"


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters.update(
        lit=lit, call=call, padded=padded, cropped=cropped, doc=doc, relayout=relayout
    )
    return env


# --------------------------------------------------------------------------
# The one literal printer


def lit(value: Any) -> str:
    """Python source for a literal value; deterministic and safe."""
    if value is None:
        return "None"
    if isinstance(value, Enum):
        return lit(value.value)
    if isinstance(value, (bool, np.bool_)):
        return "True" if value else "False"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if math.isnan(v) or math.isinf(v):
            _USES.get().add("math")
            if math.isnan(v):
                return "math.nan"
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


def call(c: Call, **extra: object) -> str:
    """``c`` as source; ``extra`` keywords are added (e.g. ``inplace=True``)."""
    kwargs = [*c.kwargs, *extra.items()]
    parts = [lit(a) for a in c.args] + [f"{k}={lit(v)}" for k, v in kwargs]
    return f"{c.func}({', '.join(parts)})"


_RELAYOUT = {
    Relayout.NONE: "",
    Relayout.SWAP_TIME: ".transpose(1, 2)",
    Relayout.CHANNELS_LAST: ".movedim(1, -1)",
    Relayout.CHANNELS_FIRST: ".movedim(-1, 1)",
}


def relayout(expr: str, how: Relayout) -> str:
    """``expr`` with its axes re-ordered as ``how`` says."""
    return expr + _RELAYOUT[how]


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
    if pad.mode is PadMode.SYMMETRIC:
        return f"pad_symmetric({expr}, {amounts})"
    extra = ""
    if pad.mode is not PadMode.CONSTANT:
        extra = f", mode={lit(pad.mode)}"
    elif pad.value:
        extra = f", value={lit(pad.value)}"
    return f"nn.functional.pad({expr}, {amounts}{extra})"


def cropped(expr: str, crop: tuple[int, ...]) -> str:
    """Remove ``crop`` (F.pad order) from ``expr``: F.pad with negative sizes."""
    if not any(crop):
        return expr
    return f"nn.functional.pad({expr}, {lit(tuple(-c for c in crop))})"


def trace(node: Node) -> str:
    short = re.sub(r"[^A-Za-z0-9_.]", "?", node.short_class)
    return f"{node.name!r} ({short})"


# --------------------------------------------------------------------------
# Module text


@cache
def _macros(template: str) -> Any:
    return environment().get_template(f"layers/{template}.jinja").module


def render(net: Network, plan: ForwardPlan, about: list[str], class_doc: str) -> str:
    """model.py before black: the IR and its forward plan, through the templates."""
    env = environment()
    token = _USES.set(set())
    try:
        inits = []
        for n in net.nodes:
            extra = (
                {"in_place": True}
                if n.name in plan.in_place and n.template == "module"
                else {}
            )
            code = str(_macros(n.template).init(n, **extra)).strip()
            if code:
                traced = n.ident != n.name
                inits.append({"trace": trace(n) if traced else "", "code": code})
        body = []
        for step in plan.steps:
            extra = {"in_place": True} if step.in_place else {}
            outs = list(step.outs)
            if step.annotated:
                outs[0] += ": torch.Tensor"
            code = str(
                _macros(step.node.template).forward(
                    step.node, outs, list(step.args), **extra
                )
            )
            if code.strip():
                body.append(code.strip())
            if step.alias:
                body.append(f"{step.alias} = x")
            if step.free:
                body.append(f"del {', '.join(step.free)}")
        helpers = closure((*net.helpers, *training.helpers(net)))
        names = converter_names(net)
        first = {}
        for spec in net.inputs:
            first.setdefault(names[spec.layer], spec)
        converters = [
            env.get_template("from_matlab.py.jinja")
            .render(spec=spec, name=name)
            .strip()
            for name, spec in first.items()
        ]
        hooked = [n for n in net.nodes if isinstance(n, ModuleNode)]
        text = env.get_template("model.py.jinja").render(
            net=net,
            matlab_names=[(n.ident, n.name) for n in hooked if n.ident != n.name],
            not_layer_outputs=tuple(n.ident for n in hooked if not n.hookable()),
            about=about,
            class_doc=class_doc,
            helpers=[h.code for h in helpers] + stubs.class_sources(net),
            inits=inits,
            body=body,
            signature=", ".join(f"{name}: torch.Tensor" for name in plan.inputs),
            returns=", ".join(plan.returns),
            returns_type=(
                "torch.Tensor"
                if len(plan.returns) == 1
                else f"tuple[{', '.join('torch.Tensor' for _ in plan.returns)}]"
            ),
            normalizes=any(
                getattr(n, "normalization", Normalization.NONE)
                is not Normalization.NONE
                for n in net.nodes
            ),
            outputs_with_classes=_classes(net),
            weights_name=WEIGHTS_NAME,
            converters=converters,
            training=training.render(net),
            folds=batchnorm_folds(net),
            imports="",
        )
        imports = _imports(
            _USES.get(), [i for h in helpers for i in h.imports] + fold_imports(net)
        )
    finally:
        _USES.reset(token)
    return text.replace("# {imports}\n", imports, 1)


def _classes(net: Network) -> list[dict[str, Any]]:
    out = []
    for i, spec in enumerate(net.outputs):
        if not spec.classes:
            continue
        suffix = "" if i == 0 else f"_{spec.ident.upper()}"
        out.append(
            {
                "const": f"CLASSES{suffix}",
                "classes": spec.classes,
                "weights": spec.class_weights,
                "weights_const": f"CLASS_WEIGHTS{suffix}",
            }
        )
    return out


# The generated file's own imports: (module, name) pairs, name "" for `import module`.
_ALWAYS = {
    ("functools", "partial"),
    ("pathlib", "Path"),
    ("torch", ""),
    ("torch", "nn"),
}
_STDLIB = frozenset({"math", "functools", "pathlib", "collections.abc", "typing"})


def _imports(used: set[str], helper_imports: list[str]) -> str:
    """The import block, from what the rendered code used and the helpers need."""
    wanted = set(_ALWAYS)
    if "math" in used:
        wanted.add(("math", ""))
    for line in helper_imports:
        words = line.split()
        if words[0] == "import":
            wanted.add((words[1], ""))
        else:
            for name in line.split(" import ", 1)[1].split(","):
                wanted.add((words[1], name.strip()))
    sections = []
    for stdlib in (True, False):
        group = sorted(w for w in wanted if (w[0] in _STDLIB) == stdlib)
        plain = [f"import {m}" for m, n in group if not n]
        froms: dict[str, list[str]] = {}
        for m, n in group:
            if n:
                froms.setdefault(m, []).append(n)
        lines = plain + [
            f"from {m} import {', '.join(sorted(ns))}"
            for m, ns in sorted(froms.items())
        ]
        sections.append("\n".join(lines))
    return "\n\n".join(sections) + "\n"


def converter_names(net: Network) -> dict[str, str]:
    """The from_matlab helper for each input layer: one per distinct format."""
    formats = {spec.type.format for spec in net.inputs}
    if len(formats) == 1:
        return {spec.layer: "from_matlab" for spec in net.inputs}
    return {spec.layer: f"from_matlab_{spec.ident}" for spec in net.inputs}
