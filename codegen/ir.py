"""The intermediate representation: a network graph of typed layer nodes.

Nodes are frozen, keyword-only dataclasses. Each node kind names its jinja
template; every layout conversion (MATLAB H×W×C×N → PyTorch N×C×H×W,
column-major flattening, padding order) is already applied to the values held
here, so templates only print them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from typing import ClassVar

import numpy as np

# --------------------------------------------------------------------------
# Tensor types

_TORCH_LAYOUT = {
    # MATLAB format (batch left out) → layout of the generated code
    "SSC": "N×C×H×W",
    "SSSC": "N×C×H×W×D",
    "SC": "N×C×L",
    "C": "N×C",
    "CT": "N×T×C",
    "SCT": "N×T×C×L",
    "SSCT": "N×T×C×H×W",
    "SSSCT": "N×T×C×H×W×D",
}
_SPATIAL_LETTERS = {1: ("L",), 2: ("H", "W"), 3: ("H", "W", "D")}


@dataclass(frozen=True, kw_only=True)
class TensorType:
    """The per-observation shape of a tensor, in MATLAB's terms.

    ``spatial`` lists the S sizes (H, W[, D]); ``time`` says whether there is a
    T dimension, whose length is only known at run time. ``time_last`` is the
    one PyTorch-side detail: a vector sequence the generated code holds as
    N×C×T (after 1-D convolutions) rather than N×T×C.

    ``heads`` marks a selfAttentionLayer's attention scores: MATLAB's
    unformatted keys×queries×heads×N array (the layout attention() documents
    for its weights), held as (N, heads, queries, keys); ``channels`` is then
    the number of heads.
    """

    spatial: tuple[int, ...] = ()
    channels: int
    time: bool = False
    time_last: bool = False
    heads: int = 0

    @property
    def format(self) -> str:
        if self.heads:
            return "UUU"
        return "S" * len(self.spatial) + "C" + ("T" if self.time else "")

    @property
    def matlab_format(self) -> str:
        """MATLAB's dlarray format with the batch: 'SSCB', 'CB', 'CBT', ..."""
        if self.heads:
            return "UUUU"  # unformatted; the 4th dimension holds the observations
        return "S" * len(self.spatial) + "CB" + ("T" if self.time else "")

    def torch_dim(self, matlab_dim: int) -> int:
        """PyTorch axis of MATLAB dimension ``matlab_dim`` (1-based)."""
        if self.heads:  # keys×queries×heads×N ↔ (N, heads, queries, keys)
            return 4 - matlab_dim
        letter = self.matlab_format[matlab_dim - 1]
        if letter == "B":
            return 0
        if self.time_last:
            return {"C": 1, "T": 2}[letter]
        if letter == "T":
            return 1
        if letter == "C":
            return -1 if self.format == "CT" else (2 if self.time else 1)
        return (3 if self.time else 2) + matlab_dim - 1

    @property
    def channel_dim(self) -> int:
        return self.torch_dim(self.matlab_format.index("C") + 1)

    @property
    def matlab(self) -> str:
        """Size in MATLAB's own notation, e.g. ``28×28×1`` (batch omitted)."""
        if self.heads:
            return f"T×T×{self.heads}"
        dims = [*map(str, self.spatial), str(self.channels)]
        if self.time:
            dims.append("T")
        return "×".join(dims)

    @property
    def torch_layout(self) -> str:
        if self.heads:
            return "N×heads×queries×keys"
        return "N×C×T" if self.time_last else _TORCH_LAYOUT[self.format]

    @property
    def torch_shape(self) -> tuple[int | str, ...]:
        """The PyTorch shape with symbolic N (and T)."""
        if self.heads:
            return ("N", self.heads, "T", "T")
        if self.time_last:
            return ("N", self.channels, "T")
        if self.time:
            return ("N", "T", self.channels, *self.spatial)
        return ("N", self.channels, *self.spatial)

    @property
    def spatial_letters(self) -> tuple[str, ...]:
        return _SPATIAL_LETTERS.get(len(self.spatial), ())


# --------------------------------------------------------------------------
# Closed sets


class PadMode(str, Enum):
    """How padded elements are filled (``F.pad`` modes plus MATLAB's own)."""

    CONSTANT = "constant"
    REPLICATE = "replicate"
    REFLECT = "reflect"  # MATLAB 'symmetric-exclude-edge'
    SYMMETRIC = "symmetric"  # MATLAB 'symmetric-include-edge': a helper


class Normalization(str, Enum):
    """An input layer's normalization, as MATLAB names it."""

    NONE = "none"
    ZEROCENTER = "zerocenter"
    ZSCORE = "zscore"
    RESCALE = "rescale"


class CombineOp(str, Enum):
    """What a combining layer does with its inputs."""

    ADD = "+"
    MUL = "*"
    CAT = "cat"


class Relayout(Enum):
    """A change of axis order applied to a tensor before or after a module.

    The IR says what happens; ``render`` alone knows the code for it.
    """

    NONE = "none"
    SWAP_TIME = "swap_time"  # N×T×C ↔ N×C×T (also N×C×L ↔ N×L×C)
    CHANNELS_LAST = "channels_last"  # N×C×... → N×...×C
    CHANNELS_FIRST = "channels_first"  # N×...×C → N×C×...

    def __bool__(self) -> bool:
        return self is not Relayout.NONE


# --------------------------------------------------------------------------
# Padding


@dataclass(frozen=True, kw_only=True)
class Pad:
    """Explicit padding applied before a layer, in ``F.pad`` order.

    ``amounts`` is (left, right, top, bottom) for 2-D data: the last dimension
    first, as ``torch.nn.functional.pad`` wants it. ``same`` holds
    (kernel, stride, dilation) when MATLAB's 'same' padding must be computed
    from the input size at run time (stride > 1).
    """

    amounts: tuple[int, ...] = ()
    mode: PadMode = PadMode.CONSTANT
    value: float = 0.0
    same: tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]] | None = None

    @property
    def needed(self) -> bool:
        return self.same is not None or any(self.amounts)


# --------------------------------------------------------------------------
# Calls


@dataclass(frozen=True)
class Call:
    """A constructor call such as ``nn.Conv2d(3, 16, kernel_size=3)``.

    Keyword arguments equal to PyTorch's defaults are left out by the parser,
    so the generated line shows only what matters.
    """

    func: str
    args: tuple[object, ...] = ()
    kwargs: tuple[tuple[str, object], ...] = ()


# --------------------------------------------------------------------------
# Graph


@dataclass(frozen=True, kw_only=True)
class Port:
    """One output of a layer: ``layer`` is the MATLAB layer name."""

    layer: str
    index: int = 0


@dataclass(frozen=True, kw_only=True, eq=False)
class Node:
    """Base of every layer node.

    ``template`` names the jinja file under ``templates/layers/``; it offers
    the macros ``init(layer)`` and ``forward(layer, outs, args)``.
    ``helpers`` names snippets under ``templates/helpers/`` that the generated
    file must define once. ``elide`` marks layers that do nothing at
    inference (output layers): their input flows straight through.
    ``port_names`` name the outputs (``out_types`` holds one type each);
    ``notes`` are sentences for the generated docstring. ``ident`` and
    ``names`` (buffers, locals of extra ports) are set by the naming pass.
    """

    template: ClassVar[str]
    elide: ClassVar[bool] = False

    name: str
    matlab_class: str
    inputs: tuple[Port, ...] = ()
    in_types: tuple[TensorType, ...] = ()
    out_types: tuple[TensorType, ...] = ()
    ident: str = ""
    helpers: tuple[str, ...] = ()
    port_names: tuple[str, ...] = ("out",)
    notes: tuple[str, ...] = ()
    max_steps: int = 0  # longest sequence the layer accepts (0: any)
    names: tuple[tuple[str, str], ...] = ()  # derived key → identifier
    # MATLAB training factors: (state_dict key relative to the module,
    # LearnRateFactor, L2Factor) per learnable; see codegen/training.py.
    # A factor is a tuple (one per gate) where a recurrent layer saved a vector.
    factors: tuple[
        tuple[str, float | tuple[float, ...], float | tuple[float, ...]], ...
    ] = ()

    @property
    def short_class(self) -> str:
        return self.matlab_class.rsplit(".", 1)[-1]

    @property
    def in_type(self) -> TensorType:
        return self.in_types[0]

    @property
    def fixes_size(self) -> bool:
        """Whether the layer fits only the declared input size (the self-check
        then tries no smaller one)."""
        return False

    @property
    def out_type(self) -> TensorType:
        return self.out_types[0]

    def buffers(self) -> dict[str, np.ndarray]:
        """Buffers this node registers on the root module, by key."""
        return {}

    def derived(self) -> tuple[str, ...]:
        """Keys of the identifiers the node needs besides ``ident``: its
        buffers and the forward locals of its extra output ports."""
        return (*self.buffers(), *self.port_names[1:])

    def named(self, key: str) -> str:
        """The identifier the naming pass gave to derived ``key``."""
        return dict(self.names)[key]

    def state(self) -> dict[str, np.ndarray]:
        """Tensors this node adds to the module's state_dict, keyed relative
        to the module root."""
        return {self.named(k): v for k, v in self.buffers().items()}


@dataclass(frozen=True, kw_only=True, eq=False)
class ModuleNode(Node):
    """A node that owns an ``nn.Module`` attribute named after the layer.

    ``module`` builds it; ``params`` are its state_dict entries relative to
    that attribute (empty for an untrained layer).
    """

    template: ClassVar[str] = "module"
    module: Call
    params: dict[str, np.ndarray] = field(default_factory=dict)

    def state(self) -> dict[str, np.ndarray]:
        own = {f"{self.ident}.{k}": v for k, v in self.params.items()}
        return {**super().state(), **own}

    def hookable(self) -> bool:
        """Whether the module's output is the MATLAB layer's output.

        Those modules are listed in the generated LAYER_OUTPUTS, so
        ``activations()`` can return them by MATLAB name.
        """
        return True


@dataclass(frozen=True, kw_only=True, eq=False)
class PaddedModule(ModuleNode):
    """A module preceded by explicit padding and/or followed by a crop.

    ``crop`` holds F.pad-order amounts removed from the module's output
    (transposed convolutions with asymmetric cropping).
    """

    template: ClassVar[str] = "padded"
    pad: Pad = Pad()
    crop: tuple[int, ...] = ()
    pre: Relayout = Relayout.NONE  # re-layout of the input

    def hookable(self) -> bool:
        return not self.crop


@dataclass(frozen=True, kw_only=True, eq=False)
class WrappedModule(ModuleNode):
    """A module applied to a re-laid-out input, e.g. channels moved last.

    ``pre`` re-lays the input out for the module, ``post`` its output back.
    """

    template: ClassVar[str] = "wrapped"
    pre: Relayout = Relayout.NONE
    post: Relayout = Relayout.NONE

    def hookable(self) -> bool:
        return not self.post


@dataclass(frozen=True, kw_only=True)
class InputSpec:
    """One input of the generated ``forward``."""

    layer: str
    ident: str
    type: TensorType


@dataclass(frozen=True, kw_only=True)
class OutputSpec:
    """One output of the generated ``forward`` and what MATLAB made of it."""

    port: Port
    ident: str
    type: TensorType
    classes: tuple[str, ...] = ()
    class_weights: tuple[float, ...] = ()
    loss: str = ""  # a sentence naming the matching PyTorch loss


@dataclass(frozen=True, kw_only=True, eq=False)
class Network:
    """A parsed network, nodes in a stable topological order."""

    source: str  # file basename
    variable: str
    matlab_class: str
    class_name: str
    nodes: tuple[Node, ...]
    inputs: tuple[InputSpec, ...]
    outputs: tuple[OutputSpec, ...]
    notes: tuple[str, ...] = ()
    constants: tuple[tuple[str, object], ...] = ()  # extra module-level names
    matlab_order: tuple[str, ...] = ()  # layer names in MATLAB's Layers order
    untrained: tuple[str, ...] = ()  # layers the .mat file holds no weights for

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def activation_size(self) -> int:
        """Values one observation produces in all layers (time steps: 1)."""
        return sum(
            math.prod(t.spatial) * t.channels for n in self.nodes for t in n.out_types
        )

    def state(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for n in self.nodes:
            out.update(n.state())
        return dict(sorted(out.items()))

    @property
    def helpers(self) -> tuple[str, ...]:
        return tuple(sorted({h for n in self.nodes for h in n.helpers}))
