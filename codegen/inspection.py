"""mat2torch inspect: what analyzeNetwork shows, and whether it will convert."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from codegen import stubs
from codegen.diagnostics import ConversionError
from codegen.ir import TensorType
from codegen.matfile import MatObject
from codegen.parse import parse_layers
from codegen.pipeline import Loaded, build, generate, load_graph
from codegen.plan import ForwardPlan
from codegen.stubs import Stub


def learnable_count(record: MatObject) -> int:
    """Learnable values saved with a layer (built-in or user-defined)."""
    total = 0
    custom = record.get("nnet.cnn.layer.mixin.Learnable.LearnablesTypes")
    for key, value in record.fields.items():
        if isinstance(value, dict) and "Value" in value and "LearnRateFactor" in value:
            total += int(np.size(value["Value"]))
        elif isinstance(value, np.ndarray) and (
            (isinstance(custom, dict) and key in custom)
            # a bare array with its factor beside it: Weights + WeightLearnRateFactor
            or f"{key.removesuffix('s')}LearnRateFactor" in record
            or f"{key}LearnRateFactor" in record
        ):
            total += int(value.size)
    return total


def _shape(t: TensorType) -> dict[str, Any]:
    return {
        "matlab_size": t.matlab,
        "matlab_format": t.matlab_format,
        "torch_layout": t.torch_layout,
        "torch_shape": list(t.torch_shape),
    }


def _normalization(record: MatObject) -> str:
    norm = record.get("Normalization")
    if isinstance(norm, dict):
        return str(norm.get("Type", "none"))
    return str(norm) if isinstance(norm, str) and norm else "none"


def inspect(
    path: Path, var: str | None = None, custom_layers: Path | None = None
) -> dict[str, Any]:
    """A JSON-ready description of every layer and the network as a whole.

    With ``custom_layers`` (convert's --custom-layers file) the stubs it
    implements are 'custom' and the whole-network check runs the user's code.
    """
    path = Path(path)
    mine = stubs.load_custom(Path(custom_layers)) if custom_layers else {}
    loaded = load_graph(path, var)
    name, layer_graph = loaded.variable, loaded.graph
    parsed = parse_layers(layer_graph)
    layers = []
    for layer_name, rec in zip(layer_graph.names, layer_graph.layers, strict=True):
        entry: dict[str, Any] = {
            "name": layer_name,
            "class": rec.classname,
            "inputs": [p.layer for p in layer_graph.inputs[layer_name]],
            "learnables": learnable_count(rec),
        }
        node = parsed.nodes.get(layer_name)
        if isinstance(node, Stub):
            entry["status"] = "custom" if node.stub_class in mine else "stub"
            entry["stub_of"] = node.stub_class
            entry["outputs"] = [_shape(t) for t in node.out_types]
            entry["reason"] = f"stub ({node.stub_class}): {node.assumption}."
        elif node is not None:
            entry["status"] = "supported"
            entry["outputs"] = [_shape(t) for t in node.out_types]
        elif layer_name in parsed.problems:
            entry["status"] = "refused"
            entry["reason"] = parsed.problems[layer_name].render()
        else:
            entry["status"] = "not checked"
            entry["reason"] = (
                f"it depends on the refused layer {parsed.blocked[layer_name]!r}."
            )
        if "Normalization" in rec:
            entry["normalization"] = _normalization(rec)
        classes = next(
            (rec.get(k) for k in ("Categories", "ClassNames") if k in rec), None
        )
        if isinstance(classes, list) and classes:
            entry["classes"] = [str(c) for c in classes]
        layers.append(entry)
    refused = [e for e in layers if e["status"] not in ("supported", "stub", "custom")]
    problem = "" if refused else _whole_network_problem(layers, loaded, mine)
    return {
        "file": path.name,
        "variable": name,
        "class": layer_graph.matlab_class,
        "layers": layers,
        "total_layers": len(layers),
        "total_learnables": sum(e["learnables"] for e in layers),
        "refused": sum(e["status"] == "refused" for e in layers),
        "stubs": sum(e["status"] == "stub" for e in layers),
        "custom": sum(e["status"] == "custom" for e in layers),
        "convertible": not refused and not problem,
        **({"problem": problem} if problem else {}),
    }


def _whole_network_problem(
    layers: list[dict[str, Any]], loaded: Loaded, mine: dict[str, str]
) -> str:
    """What convert would still refuse once every layer is supported.

    The same steps as convert short of writing (outputs, names, plan, the
    user's classes, generated code, the size budget and the check forward
    pass), so the two never disagree. A user class matched by the stub's
    generated name (known only now) makes its layers 'custom' too.
    """
    try:
        net, plan = build(loaded)
        if mine:
            net = stubs.use_custom(net, mine)
            custom = {n.name for n in stubs.stubs(net) if n.custom}
            for entry in layers:
                if entry["name"] in custom:
                    entry["status"] = "custom"
        _add_forward(layers, plan)
        generate(net, plan, check=True)
    except ConversionError as exc:
        return exc.render()
    return ""


def _add_forward(layers: list[dict[str, Any]], plan: ForwardPlan) -> None:
    """What forward() does with each layer, from the plan render uses: the
    variable its output goes to and whether it overwrites its input."""
    steps = {s.node.name: s for s in plan.steps}
    for entry in layers:
        step = steps.get(entry["name"])
        if step is not None:
            entry["forward"] = {"variable": step.outs[0], "in_place": step.in_place}
        elif entry["name"] in plan.input_layers:
            entry["forward"] = {
                "variable": plan.variable(entry["name"]),
                "in_place": False,
            }


def render_text(report: dict[str, Any]) -> str:
    """A table like analyzeNetwork's, followed by totals."""
    header = (
        "#",
        "Name",
        "Class",
        "Output (MATLAB)",
        "PyTorch",
        "Learnables",
        "Status",
    )
    rows = [header]
    for i, e in enumerate(report["layers"], start=1):
        out = e.get("outputs", [])
        matlab = ", ".join(f"{o['matlab_size']} ({o['matlab_format']})" for o in out)
        torch = ", ".join(
            "(" + ", ".join(map(str, o["torch_shape"])) + ")" for o in out
        )
        rows.append(
            (
                str(i),
                repr(e["name"])[1:-1],
                e["class"].rsplit(".", 1)[-1],
                matlab or "-",
                torch or "-",
                f"{e['learnables']:,}",
                (
                    f"{e['status']} {e['stub_of']}"
                    if e["status"] in ("stub", "custom")
                    else e["status"]
                ),
            )
        )
    widths = [max(len(r[c]) for r in rows) for c in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.append("")
    lines.append(
        f"{report['file']}: variable '{report['variable']}' ({report['class']}): "
        f"{report['total_layers']} layers, {report['total_learnables']:,} learnables."
    )
    for e in report["layers"]:
        if "normalization" in e:
            lines.append(f"Input {e['name']!r}: normalization '{e['normalization']}'.")
        if "classes" in e:
            shown = ", ".join(e["classes"][:20]) + (
                " ..." if len(e["classes"]) > 20 else ""
            )
            lines.append(f"Classes of {e['name']!r} ({len(e['classes'])}): {shown}")
    if report.get("problem"):
        lines.append(
            f"Every layer converts, but the network does not: {report['problem']}"
        )
    elif report["convertible"] and report["stubs"]:
        lines.append(
            f"Converts with {report['stubs']} stub layer(s) to write by hand "
            "(--strict refuses them)."
        )
    elif report["convertible"] and report.get("custom"):
        lines.append(
            f"Every layer converts ({report['custom']} with your --custom-layers "
            "classes)."
        )
    elif report["convertible"]:
        lines.append("Every layer converts.")
    else:
        lines.append(f"{report['refused']} layer(s) cannot be converted:")
        for e in report["layers"]:
            if e["status"] == "refused":
                lines.append(f"  - {e['reason']}")
    return "\n".join(lines)
