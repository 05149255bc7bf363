"""One naming pass: MATLAB layer names → safe, unique Python identifiers.

Rules (also in the README):
1. Non-ASCII letters lose their accents; anything else outside [A-Za-z0-9_]
   becomes ``_``; CamelCase becomes snake_case; runs of ``_`` collapse and
   leading/trailing ``_`` go (so no dunders).
2. An empty result takes a name from the layer's class; a leading digit gets
   a ``layer_`` prefix.
3. Python keywords and built-ins, names used by the generated file and
   ``nn.Module`` attributes get a trailing ``_``.
4. Clashes get ``_2``, ``_3``, ... in MATLAB's layer order.
"""

from __future__ import annotations

import dataclasses
import keyword
import re
import unicodedata
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from codegen.ir import Network

# Attributes of torch.nn.Module (checked against the installed torch by a
# test); a layer named like one of them would break the module.
MODULE_ATTRIBUTES = frozenset("""
    T_destination add_module apply bfloat16 buffers call_super_init children
    compile cpu cuda double dump_patches eval extra_repr float forward
    get_buffer get_extra_state get_parameter get_submodule half ipu
    load_state_dict modules mtia named_buffers named_children named_modules
    named_parameters parameters register_backward_hook register_buffer
    register_forward_hook register_forward_pre_hook register_full_backward_hook
    register_full_backward_pre_hook register_load_state_dict_post_hook
    register_load_state_dict_pre_hook register_module register_parameter
    register_state_dict_post_hook register_state_dict_pre_hook requires_grad_
    set_extra_state set_submodule share_memory state_dict to to_empty train
    training type xpu zero_grad
    """.split())

# Names the generated file itself defines or imports besides its helpers
# (codegen.helpers lists those).
FILE_NAMES = frozenset("""
    torch nn math partial Path self x super CLASSES CLASS_WEIGHTS WEIGHTS_FILE
    ANCHOR_BOXES MATLAB_NAMES NOT_LAYER_OUTPUTS CHANNELS_FIRST load_model
    from_matlab normalize_input annotations activations strict path
    """.split())

# Python's built-in functions and types (3.10-3.13): a forward() variable
# named like one would shadow it.
BUILTINS = frozenset("""
    abs aiter all anext any ascii bin bool breakpoint bytearray bytes callable
    chr classmethod compile complex copyright credits delattr dict dir divmod
    enumerate eval exec exit filter float format frozenset getattr globals
    hasattr hash help hex id input int isinstance issubclass iter len license
    list locals map max memoryview min next object oct open ord pow print
    property quit range repr reversed round set setattr slice sorted
    staticmethod str sum super tuple type vars zip
    """.split())

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def identifier(name: str, fallback: str = "layer") -> str:
    """A snake_case identifier for one MATLAB name (not yet unique)."""
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    text = re.sub(r"[^A-Za-z0-9]+", "_", text)
    text = _CAMEL.sub("_", text).lower()
    text = re.sub(r"_+", "_", text).strip("_")
    if not text:
        text = fallback
    if text[0].isdigit():
        text = f"layer_{text}"
    if keyword.iskeyword(text) or keyword.issoftkeyword(text):
        text += "_"
    if text in MODULE_ATTRIBUTES or text in reserved_names() or text in BUILTINS:
        text += "_"
    return text


def reserved_names() -> frozenset[str]:
    """Every name the generated file may define or import itself."""
    from codegen.helpers import helper_names

    return FILE_NAMES | helper_names()


def unique_identifiers(
    names: list[str], fallbacks: list[str], taken: set[str] | None = None
) -> list[str]:
    """Identifiers for ``names`` in order, none repeated and none in ``taken``.

    ``taken`` is updated, so several calls can share one namespace.
    """
    used = taken if taken is not None else set()
    out = []
    for name, fallback in zip(names, fallbacks, strict=True):
        base = identifier(name, fallback)
        candidate, n = base, 1
        while candidate in used:
            n += 1
            candidate = f"{base}_{n}"
        used.add(candidate)
        out.append(candidate)
    return out


def name_network(net: Network) -> Network:
    """The naming pass: every identifier the file will hold, in one namespace.

    Layers are named first, in MATLAB's Layers order, so attributes keep the
    MATLAB names; then, layer by layer, the names derived from them (root
    buffers such as ``input_mean``, forward locals of extra output ports), so
    a derived name can never take a layer's (``lstm_h0`` the buffer and
    ``lstm_h0`` the layer become ``lstm_h0_2`` and ``lstm_h0``). Per-output
    constants are upper case and per-input converters start with
    ``from_matlab_``: neither can meet a layer identifier.
    """
    by_name = {n.name: n for n in net.nodes}
    order = [name for name in net.matlab_order if name in by_name]
    taken: set[str] = set()
    idents = unique_identifiers(
        order, [fallback_name(by_name[n].matlab_class) for n in order], taken
    )
    ident_of = dict(zip(order, idents, strict=True))
    named = {}
    for name in order:
        node, ident = by_name[name], ident_of[name]
        keys = list(node.derived())
        derived = unique_identifiers([f"{ident}_{k}" for k in keys], keys, taken)
        named[name] = dataclasses.replace(
            node, ident=ident, names=tuple(zip(keys, derived, strict=True))
        )
    return dataclasses.replace(
        net,
        nodes=tuple(named[n.name] for n in net.nodes),
        inputs=tuple(
            dataclasses.replace(spec, ident=ident_of[spec.layer]) for spec in net.inputs
        ),
        outputs=tuple(
            dataclasses.replace(out, ident=ident_of[out.port.layer])
            for out in net.outputs
        ),
    )


def class_name(name: str) -> str:
    """A CamelCase class name for the generated module (``airCompNet`` → ``AirCompNet``)."""
    words = identifier(name, "net").strip("_").split("_")
    text = "".join(w[:1].upper() + w[1:] for w in words if w)
    if not text or text[0].isdigit():
        text = f"Net{text}"
    if keyword.iskeyword(text) or text in reserved_names() or text in MODULE_ATTRIBUTES:
        text += "Net"
    return text


def fallback_name(matlab_class: str) -> str:
    """The name MATLAB-like tools would give an unnamed layer of this class."""
    short = matlab_class.rsplit(".", 1)[-1]
    short = re.sub(r"Layer$", "", short) or "layer"
    return identifier(short)
