"""Ports a damaged file names but the layer does not have.

A connection ``relu/out2`` or an OutputName ``fc/out7`` can only come from a
damaged or hand-edited file: a single-output layer has no second output.
The graph builder cannot tell (it does not know how many outputs a layer
has); these checks run once the handler has said so.
"""

from __future__ import annotations

from codegen.diagnostics import ConversionError, Diagnostic, error
from codegen.ir import Node, Port, TensorType


def missing_port(
    name: str, classname: str, ports: tuple[Port, ...], types: dict[Port, TensorType]
) -> Diagnostic:
    """The diagnostic for a layer fed from an output its source lacks."""
    port = next(p for p in ports if p not in types)
    have = sum(1 for p in types if p.layer == port.layer)
    return error(
        "file",
        name,
        classname,
        f"its input comes from output {port.index + 1} of layer {port.layer!r}, "
        f"which has {have} output{'s' if have != 1 else ''}; the file is damaged.",
        "Save the network again in MATLAB and convert the new file.",
    )


def check_output_ports(nodes: dict[str, Node], names: list[str], what: str) -> None:
    """Refuse an OutputName such as 'fc/out7' that names a missing output."""
    for name in names:
        layer, _, port = name.partition("/")
        node = nodes[layer]
        index = (
            int(port[3:]) - 1 if port.startswith("out") and port[3:].isdigit() else 0
        )
        if index >= len(node.out_types) and not node.elide:
            raise ConversionError(
                f"{what}: its OutputNames names {name!r}, but layer {layer!r} "
                f"({node.short_class}) has {len(node.out_types)} output(s); the "
                "file is damaged.",
                hint="Save the network again in MATLAB and convert the new file.",
            )
