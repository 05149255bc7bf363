"""What the generated file needs for training: MATLAB's loss and factors.

``loss_fn()`` returns one of the loss helpers (templates/helpers/matlab_*.py)
per output, chosen from the output layer the network was trained with;
``LEARN_FACTORS`` lists each learnable whose (LearnRateFactor, L2Factor)
differs from ``default_factors``, which the generated ``param_groups`` applies. Kept apart from
render.py so the rendering of the network itself does not change.
"""

from __future__ import annotations

import dataclasses
import textwrap
from typing import Any

from codegen.ir import Network, Node, OutputSpec, TensorType
from codegen.text import doc

# Loss kind (set by codegen/layers/output.py) → helper module.
_HELPER = {
    "crossentropy": "matlab_cross_entropy",
    "half_mse": "matlab_half_mse",
}


def _output_node(net: Network, spec: OutputSpec) -> Node | None:
    node = net.node(spec.port.layer)
    return node if node.elide else None


def _kind(node: Node | None) -> str:
    return str(getattr(node, "loss_kind", "none")) if node is not None else "none"


def _no_loss(net: Network) -> bool:
    """No output layer at all (a dlnetwork): loss_fn just raises."""
    return all(_output_node(net, spec) is None for spec in net.outputs)


def helpers(net: Network) -> tuple[str, ...]:
    """Loss helper modules the generated file must define."""
    if _no_loss(net):
        return ()
    kinds = [_kind(_output_node(net, spec)) for spec in net.outputs]
    names = {_HELPER.get(k, "matlab_loss_stub") for k in kinds}
    if len(kinds) > 1 and set(kinds) != {"none"}:
        names.add("matlab_loss_sum")
    return tuple(sorted(names))


def _loss_expr(net: Network, index: int, spec: OutputSpec) -> tuple[str, str]:
    """(constructor source, one sentence for the docstring) for one output."""
    node = _output_node(net, spec)
    kind = _kind(node)
    t: TensorType = dataclasses.replace(spec.type, time_last=False)
    if node is not None and kind == "crossentropy":
        args = [str(t.channel_dim)]
        weights = getattr(node, "class_weights", ())
        if weights:
            args.append(
                "CLASS_WEIGHTS" + ("" if index == 0 else f"_{spec.ident.upper()}")
            )
        args.append("logits=logits")
        where = {
            "C": "",
            "CT": " at every time step",
        }.get(t.format, " at every pixel")
        said = (
            f"{doc(node.name)}: cross-entropy of the class probabilities{where}"
            f"{' weighted by ClassWeights' if weights else ''}; targets are class "
            "indices (-1: undefined)"
        )
        return f"MatlabCrossEntropy({', '.join(args)})", said
    if node is not None and kind == "half_mse":
        arg = "time_dim=1" if t.time else ""
        said = (
            f"{doc(node.name)}: half-mean-squared-error"
            f"{' per time step' if t.time else ''}; targets shaped like the output"
        )
        return f"MatlabHalfMSE({arg})", said
    if node is None:
        layer, cls = net.variable, net.matlab_class
        why = (
            "ends the network without an output layer: the .mat file holds no loss "
            "(MATLAB's trainnet or a custom loop supplied it)."
        )
    else:
        layer, cls = node.name, node.matlab_class
        why = (
            "defines its own loss, which a .mat file does not store."
            if kind == "custom"
            else "has a loss mat2torch does not translate yet."
        )
    said = f"{doc(layer)}: not translated, calling the loss raises"
    return f"MatlabLossNotTranslated({layer!r}, {cls!r}, {why!r})", said


def default_factors(node: Node, key: str) -> tuple[float, float]:
    """The factors param_groups assumes for a learnable not in LEARN_FACTORS:
    MATLAB's defaults, where biases have L2Factor 0 but the offsets of norm
    layers (modules whose weight is 1-D, as param_groups tells them) have 1."""
    owner, _, last = key.rpartition(".")
    weight = getattr(node, "params", {}).get(f"{owner}.weight" if owner else "weight")
    offset = (
        weight.ndim == 1
        if weight is not None and weight.size
        else node.matlab_class.endswith("NormalizationLayer")
    )
    return 1.0, 0.0 if last.startswith("bias") and not offset else 1.0


def render(net: Network) -> dict[str, Any]:
    """What templates/model.py.jinja prints for training."""
    parts = [_loss_expr(net, i, s) for i, s in enumerate(net.outputs)]
    if len(parts) == 1:
        body = parts[0][0]
    else:
        body = f"MatlabLossSum({', '.join(p[0] for p in parts)})"
    factors, gates = {}, {}
    for node in net.nodes:
        for key, rate, l2 in node.factors:
            if isinstance(rate, tuple) or isinstance(l2, tuple):
                n = len(rate if isinstance(rate, tuple) else l2)  # type: ignore[arg-type]
                gates[f"{node.ident}.{key}"] = tuple(
                    f if isinstance(f, tuple) else (f,) * n for f in (rate, l2)
                )
            elif (rate, l2) != default_factors(node, key):
                factors[f"{node.ident}.{key}"] = (rate, l2)
    raises = ""
    if _no_loss(net):
        raises = (
            f"MATLAB {net.matlab_class} {net.variable!r} has no output layer: the "
            ".mat file holds no loss (MATLAB's trainnet or a custom loop supplied "
            "it). Write the loss in PyTorch yourself."
        )
    return {
        "raises": raises,
        "loss": body,
        "loss_doc": [
            textwrap.fill(p[1] + ".", 84, subsequent_indent="    ") for p in parts
        ],
        "logits": "logits=logits" in body,
        "factors": sorted(factors.items()),
        "gate_factors": sorted(gates.items()),
    }
