"""Layer families: one module per family, each registering MATLAB classes.

A handler turns one MATLAB layer record (its saved fields) plus the types of
its inputs into an IR node. Handlers raise ``LayerError`` for anything they
cannot convert; the pipeline collects those and reports them together.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from codegen.ir import Node, Pad, PadMode, Port, Relayout, TensorType
from codegen.matfile import MatObject

FAMILIES = (
    "activation",
    "attention",
    "combine",
    "conv",
    "detection",
    "function",
    "input",
    "linear",
    "matconvnet",
    "norm",
    "output",
    "pool",
    "recurrent",
    "sequence",
    "spatial",
)


class LayerError(Exception):
    """A layer that cannot be converted; ``hint`` says what to do."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class Untranslatable(LayerError):
    """A layer whose computation the file does not pin down: it becomes a stub.

    ``out_types`` are the output sizes the handler knows, if any.
    """

    def __init__(
        self, message: str, hint: str = "", out_types: tuple[TensorType, ...] = ()
    ) -> None:
        super().__init__(message, hint)
        self.out_types = out_types


@dataclass(frozen=True)
class Layer:
    """What a handler sees: the MATLAB record and the types flowing in."""

    record: MatObject
    name: str
    inputs: tuple[Port, ...]
    in_types: tuple[TensorType, ...]
    sources: tuple[Node, ...] = ()  # the nodes producing each input

    @property
    def classname(self) -> str:
        return self.record.classname

    @property
    def in_type(self) -> TensorType:
        return self.in_types[0]

    def common(self) -> dict[str, Any]:
        """Keyword arguments every node takes."""
        return {
            "name": self.name,
            "matlab_class": self.classname,
            "inputs": self.inputs,
            "in_types": self.in_types,
        }

    # ---- tolerant field access (field sets change across releases) ------

    def has(self, key: str) -> bool:
        value = self.record.get(key)
        return value is not None and not _is_empty(value)

    def raw(self, key: str, default: Any = None) -> Any:
        value = self.record.get(key)
        return default if value is None or _is_empty(value) else value

    def number(self, key: str, default: float | None = None) -> float:
        value = self.raw(key)
        if value is None:
            if default is None:
                raise LayerError(f"its '{key}' property is missing.")
            return default
        if isinstance(value, str):
            raise LayerError(f"its '{key}' is '{value}', expected a number.")
        return float(np.asarray(value, dtype=np.float64).ravel()[0])

    def integers(self, key: str, n: int, default: int | None = None) -> tuple[int, ...]:
        """A size vector of ``n`` entries; MATLAB allows a scalar for all."""
        value = self.raw(key)
        if value is None:
            if default is None:
                raise LayerError(f"its '{key}' property is missing.")
            return (default,) * n
        flat = np.asarray(value, dtype=np.float64).ravel()
        if flat.size == 1:
            flat = np.repeat(flat, n)
        if flat.size != n:
            raise LayerError(f"its '{key}' has {flat.size} entries, expected {n}.")
        return tuple(int(v) for v in flat)

    def text(self, key: str, default: str | None = None) -> str:
        value = self.raw(key)
        if value is None:
            if default is None:
                raise LayerError(f"its '{key}' property is missing.")
            return default
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
        return str(value)

    def flag(self, key: str, default: bool = False) -> bool:
        value = self.raw(key)
        if value is None:
            return default
        return bool(np.asarray(value).ravel()[0])

    def learnable(self, key: str) -> np.ndarray | None:
        """A learnable's value (struct ``{Value, ...}`` or a bare array)."""
        value = self.record.get(key)
        if isinstance(value, dict):
            value = value.get("Value")
        if value is None or _is_empty(value):
            return None
        if isinstance(value, (list, str)):
            what = "a cell array" if isinstance(value, list) else "text"
            raise LayerError(f"its '{key}' holds {what}, not a numeric array.")
        arr = np.asarray(value)
        if arr.dtype.kind not in "fiub":
            raise LayerError(f"its '{key}' holds {arr.dtype} data, not numbers.")
        if arr.dtype == np.float32:
            return arr
        out = arr.astype(np.float32)
        if np.isinf(out).sum() > np.isinf(arr).sum():
            raise LayerError(
                f"its '{key}' holds values beyond float32's range "
                f"(largest magnitude {np.nanmax(np.abs(arr)):.3g}); the weights "
                "file and PyTorch hold float32.",
                "The file is damaged, or the network was trained in double "
                "precision to values no float32 model can hold.",
            )
        return out

    def factors(self, key: str) -> tuple[Factor, Factor] | None:
        """(LearnRateFactor, L2Factor) of learnable ``key`` as MATLAB saved them.

        Newer files keep them in the learnable's struct, older ones in flat
        properties (``WeightLearnRateFactor`` for ``Weights``). Missing factors
        take MATLAB's documented defaults: 1, and L2 0 for biases. A
        recurrent layer may save one factor per gate: a vector whose entries
        differ stays a tuple (MATLAB's gate order is PyTorch's row order).
        """
        value = self.record.get(key)
        stored = value if isinstance(value, dict) else {}
        flat = _FLAT_PREFIX.get(key, key)
        out: list[Factor] = []
        for what, default in (
            ("LearnRateFactor", 1.0),
            ("L2Factor", 0.0 if key.endswith("Bias") else 1.0),
        ):
            raw = stored.get(what)
            if raw is None or _is_empty(raw):
                raw = self.raw(flat + what, default)
            arr = np.asarray(raw, dtype=np.float64).ravel()
            if arr.size == 0 or not np.all(np.isfinite(arr)):
                return None
            same = bool(np.all(arr == arr[0]))
            out.append(float(arr[0]) if same else tuple(float(v) for v in arr))
        return out[0], out[1]

    def state_value(self, key: str) -> np.ndarray | None:
        """A state such as HiddenState (``{Value, Remember}`` or an array)."""
        return self.learnable(key)


# A training factor: one value, or one per gate of a recurrent layer.
Factor = float | tuple[float, ...]

# Flat factor property prefix of a learnable (releases before structs).
_FLAT_PREFIX = {"Weights": "Weight"}

# state_dict key (relative to the layer's module) → the MATLAB learnable it
# came from; norm layers' weight/bias are Scale/Offset (chosen by presence).
_LEARNABLE_OF = (
    (re.compile(r"weight_ih_l0(_reverse)?"), "InputWeights"),
    (re.compile(r"weight_hh_l0(_reverse)?"), "RecurrentWeights"),
    (re.compile(r"bias_[ih]h_l0(_reverse)?"), "Bias"),
    (re.compile(r"(query|key|value|output)\.(weight|bias)"), ""),
    (re.compile(r"weight"), "Weights"),
    (re.compile(r"bias"), "Bias"),
)
_NORM = {"Weights": "Scale", "Bias": "Offset"}


def learnable_of(layer: Layer, key: str) -> str | None:
    """The MATLAB learnable behind state_dict ``key`` (None: not a learnable)."""
    for pattern, name in _LEARNABLE_OF:
        match = pattern.fullmatch(key)
        if match is None:
            continue
        if not name:  # selfAttentionLayer: QueryWeights, OutputBias, ...
            part, kind = match.groups()
            return part.capitalize() + ("Weights" if kind == "weight" else "Bias")
        if name in _NORM and layer.record.get(_NORM[name]) is not None:
            return _NORM[name]
        return name
    return None


def with_factors(layer: Layer, node: Node) -> Node:
    """``node`` with its learnables' MATLAB training factors attached."""
    params = getattr(node, "params", None)
    if params is None:
        return node
    # an untrained recurrent layer: PyTorch initializes both biases (nonzero),
    # so bias_hh trains with the Bias factors
    if not params and "InputWeights" in layer.record:
        suffixes = ("", "_reverse") if getattr(node, "bidirectional", False) else ("",)
        params = {
            f"{k}_l0{suffix}": np.zeros(0)
            for suffix in suffixes
            for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        }
    elif not params:  # untrained (layer graph): conv, FC and norm learnables
        params = {
            k: np.zeros(0)
            for k in ("weight", "bias")
            if layer.record.get(learnable_of(layer, k) or "") is not None
        }
    biases = sum(v.size for k, v in params.items() if k.startswith("bias_"))
    bias = layer.learnable("Bias")
    factors = []
    for key in sorted(params):
        name = learnable_of(layer, key)
        pair = layer.factors(name) if name else None
        if key.startswith("bias_hh") and bias is not None and bias.size < biases:
            pair = (0.0, 0.0)  # PyTorch's zero second bias: MATLAB has one bias
        if pair is not None:
            gates = 4 if getattr(node, "cell", False) else 3
            for f in pair:
                if isinstance(f, tuple) and (len(f) != gates or "_l0" not in key):
                    raise LayerError(
                        f"its '{name}' has {len(f)} different training factors; "
                        f"MATLAB allows one, or one per gate ({gates}) of a "
                        "recurrent layer."
                    )
            factors.append((key, *pair))
    return dataclasses.replace(node, factors=tuple(factors))


def _is_empty(value: Any) -> bool:
    if isinstance(value, np.ndarray):
        return value.size == 0
    if isinstance(value, (list, str, dict)):
        return len(value) == 0
    return False


def mat_reshape(arr: np.ndarray, shape: tuple[int, ...], what: str) -> np.ndarray:
    """Give a MATLAB array back the trailing singleton dims MATLAB dropped."""
    if arr.size != math.prod(shape):
        raise LayerError(
            f"its {what} has {arr.size} values ({'×'.join(map(str, arr.shape))}), "
            f"expected {'×'.join(map(str, shape))}."
        )
    return np.reshape(arr, shape, order="F")


def mat_array(arr: np.ndarray, shape: tuple[int, ...], what: str) -> np.ndarray:
    """A weight array MATLAB saves exactly ``shape`` (less trailing singleton
    dims): the same values in a transposed or permuted array would reshape
    silently into the wrong weights, so it is refused."""
    if arr.size == math.prod(shape) and _trim(arr.shape) != _trim(shape):
        raise LayerError(
            f"its {what} is {'×'.join(map(str, arr.shape))}; MATLAB saves it "
            f"{'×'.join(map(str, _trim(shape)))}."
        )
    return mat_reshape(arr, shape, what)


def _trim(shape: tuple[int, ...]) -> tuple[int, ...]:
    """MATLAB's view of a shape: at least 2-D, no trailing singleton dims."""
    dims = list(shape) + [1] * (2 - len(shape))
    while len(dims) > 2 and dims[-1] == 1:
        dims.pop()
    return tuple(dims)


# --------------------------------------------------------------------------
# Registry

Handler = Callable[[Layer], Node]
REGISTRY: dict[str, Handler] = {}
FAMILY_OF: dict[str, str] = {}
TORCH_OF: dict[str, str] = {}
_loaded = False


def register(
    *classnames: str, torch: str, source: bool = False
) -> Callable[[Handler], Handler]:
    """Register a handler for MATLAB classes; a class may be claimed once.

    ``torch`` says in a few words what the generated code uses (README table);
    ``source`` marks input layers outside the input family (nothing feeds them).
    """

    def deco(fn: Handler) -> Handler:
        family = fn.__module__.rsplit(".", 1)[-1]
        checked = _checked(
            fn,
            needs_input=not (source or family == "input"),
            takes_scores=family == "function",
        )

        def handle(layer: Layer) -> Node:
            return with_factors(layer, checked(layer))

        for name in classnames:
            if name in REGISTRY:
                raise RuntimeError(f"{name} is registered twice")
            REGISTRY[name] = handle
            FAMILY_OF[name] = family
            TORCH_OF[name] = torch
        return fn

    return deco


def _checked(fn: Handler, needs_input: bool, takes_scores: bool) -> Handler:
    """``fn`` behind the checks every layer gets (see codegen.layers.fields).

    Attention scores are unformatted in MATLAB: only a functionLayer (or a
    user-defined layer, a stub) can take them.
    """
    from codegen.layers.fields import check_fields

    @functools.wraps(fn)
    def handler(layer: Layer) -> Node:
        problem = check_fields(layer.record)
        if problem:
            raise LayerError(
                f"{problem}. The file is damaged or was not saved by MATLAB.",
                "Save the network again in MATLAB and convert the new file.",
            )
        if needs_input and not layer.in_types:
            raise LayerError(
                "nothing is connected to its input (no connection leads into it)."
            )
        if not needs_input and layer.inputs:
            feeds = ", ".join(repr(p.layer) for p in layer.inputs)
            raise LayerError(
                f"it is an input layer, yet {feeds} is connected into it; the file "
                "is damaged."
            )
        if not takes_scores and any(t.heads for t in layer.in_types):
            raise LayerError(
                "it reads a selfAttentionLayer's attention scores, an unformatted "
                "keys×queries×heads×N array that only a functionLayer or a "
                "user-defined layer can take."
            )
        return fn(layer)

    return handler


def registry() -> dict[str, Handler]:
    global _loaded
    if not _loaded:
        for family in FAMILIES:
            importlib.import_module(f"codegen.layers.{family}")
        _loaded = True
    return REGISTRY


# --------------------------------------------------------------------------
# Padding shared by convolution and pooling


def spatial_padding(
    layer: Layer,
    kernel: tuple[int, ...],
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
) -> tuple[tuple[int, ...], bool]:
    """MATLAB padding as (before..., after...) per spatial dim.

    Returns ``(pads, dynamic)``: ``pads`` is (t, l, b, r) style — all
    befores then all afters — and ``dynamic`` is True when 'same' padding
    depends on the input size (stride > 1) and must be computed at run time.
    """
    n = len(kernel)
    mode = layer.text("PaddingMode", "manual").lower()
    if mode == "causal":  # 1-D only: everything on the left
        return ((kernel[0] - 1) * dilation[0], 0), False
    if mode == "same":
        if any(s > 1 for s in stride):
            return (0,) * (2 * n), True
        totals = [(k - 1) * d for k, d in zip(kernel, dilation, strict=True)]
        return tuple(t // 2 for t in totals) + tuple(t - t // 2 for t in totals), False
    if mode not in ("manual", ""):
        raise LayerError(f"PaddingMode '{mode}' is not supported here.")
    if layer.has("PaddingSize"):
        size = np.asarray(layer.raw("PaddingSize"), dtype=np.float64)
        if n == 2:
            t, b, left, r = (int(v) for v in np.broadcast_to(size.ravel(), (4,)))
            return (t, left, b, r), False
        if n == 3:  # [t l f; b r k]
            m = np.reshape(size, (2, 3), order="F") if size.size == 6 else None
            if m is None:
                raise LayerError("its 3-D PaddingSize does not have 6 entries.")
            return tuple(int(v) for v in m[0]) + tuple(int(v) for v in m[1]), False
        lr = np.broadcast_to(size.ravel(), (2,))
        return (int(lr[0]), int(lr[1])), False
    if layer.has("Padding"):  # releases before 2018: [vertical horizontal]
        vh = layer.integers("Padding", n)
        return vh + vh, False
    return (0,) * (2 * n), False


def padded_size(
    size: int, before: int, after: int, kernel: int, stride: int, dilation: int
) -> int:
    eff = (kernel - 1) * dilation + 1
    out = (size + before + after - eff) // stride + 1
    if out < 1:
        raise LayerError(
            f"its window ({eff}) is larger than its padded input ({size + before + after})."
        )
    return out


def output_spatial(
    in_spatial: tuple[int, ...],
    kernel: tuple[int, ...],
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
    pads: tuple[int, ...],
    dynamic: bool,
) -> tuple[int, ...]:
    n = len(kernel)
    if dynamic:
        return tuple(-(-s // st) for s, st in zip(in_spatial, stride, strict=True))
    return tuple(
        padded_size(
            in_spatial[i], pads[i], pads[n + i], kernel[i], stride[i], dilation[i]
        )
        for i in range(n)
    )


def make_pad(
    pads: tuple[int, ...],
    dynamic: bool,
    kernel: tuple[int, ...],
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
    mode: PadMode = PadMode.CONSTANT,
    value: float = 0.0,
) -> Pad:
    """Build an explicit ``Pad`` in F.pad order (last dimension first)."""
    n = len(kernel)
    if dynamic:
        return Pad(mode=mode, value=value, same=(kernel, stride, dilation))
    amounts: list[int] = []
    for i in reversed(range(n)):
        amounts += [pads[i], pads[n + i]]
    return Pad(amounts=tuple(amounts), mode=mode, value=value)


def padding_value(layer: Layer) -> tuple[PadMode, float]:
    """MATLAB PaddingValue → (F.pad-style mode, constant value)."""
    value = layer.raw("PaddingValue", 0.0)
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, str):
        modes = {
            "replicate": PadMode.REPLICATE,
            "symmetric-exclude-edge": PadMode.REFLECT,
            "symmetric-include-edge": PadMode.SYMMETRIC,
        }
        if value not in modes:
            raise LayerError(f"PaddingValue '{value}' is not known.")
        return modes[value], 0.0
    return PadMode.CONSTANT, float(np.asarray(value, dtype=np.float64).ravel()[0])


def symmetric_padding(pads: tuple[int, ...]) -> bool:
    n = len(pads) // 2
    return pads[:n] == pads[n:]


def collapse(values: tuple[int, ...]) -> int | tuple[int, ...]:
    """(3, 3) → 3: what a person writes for square kernels."""
    return values[0] if len(set(values)) == 1 else values


def supported_table(matconvnet: bool = False) -> str:
    """The README's supported-layer table, generated from the registry.

    ``matconvnet`` selects the MatConvNet table (SimpleNN types and DagNN
    blocks) instead of the Deep Learning Toolbox one.
    """
    if matconvnet:
        rows = ["| MatConvNet layer | generated PyTorch |", "|---|---|"]
        for name in sorted(n for n in registry() if FAMILY_OF[n] == "matconvnet"):
            rows.append(f"| `{name}` | {TORCH_OF[name]} |")
        return "\n".join(rows)
    rows = ["| MATLAB class | family | generated PyTorch |", "|---|---|---|"]
    for name in sorted(registry(), key=lambda n: (FAMILY_OF[n], n)):
        if FAMILY_OF[name] != "matconvnet":
            rows.append(f"| `{name}` | {FAMILY_OF[name]} | {TORCH_OF[name]} |")
    return "\n".join(rows)


def to_time_last(t: TensorType) -> Relayout:
    """What turns the generated code's sequence into N×C×T."""
    return Relayout.NONE if t.time_last or not t.time else Relayout.SWAP_TIME


def to_time_first(t: TensorType) -> Relayout:
    """What turns the generated code's sequence into N×T×C."""
    return Relayout.SWAP_TIME if t.time_last else Relayout.NONE


def common_layout(types: tuple[TensorType, ...]) -> tuple[tuple[Relayout, ...], bool]:
    """Re-layouts that bring several sequences into one layout, and whether it is N×C×T.

    All N×C×T stay so; a mix goes to N×T×C.
    """
    if all(t.time_last for t in types) or not any(t.time_last for t in types):
        return (Relayout.NONE,) * len(types), bool(types) and types[0].time_last
    return tuple(to_time_first(t) for t in types), False
