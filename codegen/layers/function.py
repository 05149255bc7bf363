"""functionLayer: MATLAB expressions translated to torch.

A .mat file keeps a function layer's handle only as text (its Description,
e.g. '@(x) 0.001*x') and the variables the function captured (its saved
workspace). Anonymous functions built from numbers, the layer's inputs,
element-wise operators and a fixed list of functions are translated by a
small parser that emits only whitelisted tokens. On 'CB' data (C×N in
MATLAB, (N, C) here) two matrix forms are translated too: ``M*x`` with a
captured rows×C matrix ``M`` (rows×N: ``x @ M.T``, ``M`` a buffer of the
generated module) and vertical concatenation ``[a; b]`` along the channels.
Anything else (a named function such as '@zeropad', another use of a
captured variable) is refused with the function's text and becomes a stub.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import ClassVar, NamedTuple

import numpy as np

from codegen.ir import Node, TensorType
from codegen.layers import Layer, LayerError, register
from codegen.matfile import FunctionHandle
from codegen.render import lit

# MATLAB function → (torch expression template, number of arguments)
FUNCTIONS = {
    "exp": ("torch.exp({0})", 1),
    "log": ("torch.log({0})", 1),
    "sqrt": ("torch.sqrt({0})", 1),
    "abs": ("torch.abs({0})", 1),
    "tanh": ("torch.tanh({0})", 1),
    "sin": ("torch.sin({0})", 1),
    "cos": ("torch.cos({0})", 1),
    "sigmoid": ("torch.sigmoid({0})", 1),
    "relu": ("torch.relu({0})", 1),
    "erf": ("torch.erf({0})", 1),
    "sign": ("torch.sign({0})", 1),
}
BINARY = {
    "+": "+",
    "-": "-",
    ".*": "*",
    "./": "/",
    ".^": "**",
    "*": "*",
    "/": "/",
    "^": "**",
}
# MATLAB reduction over a dimension (kept, size 1) → torch function
REDUCTIONS = {"sum": "torch.sum", "mean": "torch.mean"}
SCALAR_ONLY = {"*", "/", "^"}  # matrix operators: element-wise only with a scalar side
TOKEN = re.compile(
    # '2./x' is 2 ./ x: a number's '.' never starts an element-wise operator
    r"\s*(?:(?P<num>(?:\d+(?:\.(?![*/^])\d*)?|\.\d+)(?:[eE][+-]?\d+)?)|(?P<name>[A-Za-z]\w*)"
    r"|(?P<op>\.\*|\./|\.\^|[-+*/^(),;\[\]]))"
)
MATRIX_USE = "a captured matrix is translated only as NAME*x on 'CB' data"


@dataclass(frozen=True, kw_only=True, eq=False)
class Function(Node):
    """``expression`` is Python with {0}, {1}, ... for the inputs and {NAME}
    for each captured matrix in ``constants`` (MATLAB's layout, a buffer)."""

    template: ClassVar[str] = "function"
    expression: str
    constants: dict[str, np.ndarray] = field(default_factory=dict)

    def buffers(self) -> dict[str, np.ndarray]:
        return self.constants

    def code(self, args: list[str]) -> str:
        """The expression on the forward variables ``args``."""
        return self.expression.format(
            *args, **{k: f"self.{self.named(k)}" for k in self.constants}
        )


class _Value(NamedTuple):
    """A parsed (sub)expression: Python text, its kind and its channel count.

    ``kind`` is "scalar", "array" (``rows``: its channels) or "matrix" (a
    captured rows×cols matrix, usable only as the left side of ``*``).
    """

    expr: str
    kind: str
    rows: int = 0
    cols: int = 0


class Translation(NamedTuple):
    expression: str
    channels: int  # of the result
    constants: dict[str, np.ndarray]  # the captured matrices it uses


class _Parser:
    """Recursive descent over MATLAB's precedence: + - < * / < unary < ^."""

    def __init__(
        self,
        text: str,
        params: list[str],
        in_types: tuple[TensorType, ...] = (),
        captured: dict[str, np.ndarray] | None = None,
    ) -> None:
        self.tokens = self._lex(text)
        self.pos = 0
        self.params = params
        self.in_types = in_types
        self.in_type = in_types[0] if in_types else None
        self.captured = captured or {}
        self.used: dict[str, np.ndarray] = {}
        # 'CB' data: MATLAB's matrix operations act on C×N, channels first
        self.flat = bool(in_types) and all(t.format == "C" for t in in_types)

    @staticmethod
    def _lex(text: str) -> list[tuple[str, str]]:
        tokens, pos = [], 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            m = TOKEN.match(text, pos)
            if not m:
                raise ValueError(f"unexpected {text[pos:].strip()[:10]!r}")
            kind = m.lastgroup
            tokens.append((kind, m.group(kind)))
            pos = m.end()
        return tokens

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok is None or (value is not None and tok[1] != value):
            raise ValueError(f"expected {value or 'more'}")
        self.pos += 1
        return tok

    def parse(self) -> _Value:
        value = self.sum()
        if self.peek() is not None:
            raise ValueError(f"unexpected {self.peek()[1]!r}")
        if value.kind == "matrix":
            raise ValueError(MATRIX_USE)
        return value

    def sum(self) -> _Value:
        left = self.product()
        while (tok := self.peek()) and tok[1] in ("+", "-"):
            self.take()
            left = self._elementwise(tok[1], left, self.product())
        return left

    def product(self) -> _Value:
        left = self.unary()
        while (tok := self.peek()) and tok[1] in (".*", "./", "*", "/"):
            self.take()
            right = self.unary()
            if tok[1] == "*" and left.kind == "matrix":
                left = self._matrix_product(left, right)
            else:
                left = self._elementwise(tok[1], left, right)
        return left

    def unary(self) -> _Value:
        if (tok := self.peek()) and tok[1] in ("-", "+"):
            self.take()
            inner = self._no_matrix(self.unary())
            return inner._replace(expr=f"(-{inner.expr})") if tok[1] == "-" else inner
        return self.power()

    def power(self) -> _Value:
        base = self.atom()
        if (tok := self.peek()) and tok[1] in (".^", "^"):
            self.take()
            return self._elementwise(tok[1], base, self.unary())
        return base

    def atom(self) -> _Value:
        kind, value = self.take()
        if kind == "num":
            return _Value(lit(float(value)), "scalar")
        if value == "(":
            inner = self.sum()
            self.take(")")
            return inner
        if value == "[":
            return self._concatenate()
        if kind == "name":
            if value in self.params:
                i = self.params.index(value)
                rows = self.in_types[i].channels if i < len(self.in_types) else 0
                return _Value("{" + str(i) + "}", "array", rows)
            if value in self.captured:
                return self._matrix(value)
            if value in ("max", "min"):
                return self._clamp(value)
            if value in REDUCTIONS:
                return self._reduce(value)
            if value in FUNCTIONS:
                template, _ = FUNCTIONS[value]
                self.take("(")
                arg = self._no_matrix(self.sum())
                self.take(")")
                return arg._replace(expr=template.format(_strip_outer(arg.expr)))
            raise ValueError(f"'{value}' is not a known function or input")
        raise ValueError(f"unexpected {value!r}")

    def _matrix(self, name: str) -> _Value:
        arr = self.captured[name]
        if arr.ndim != 2 or arr.dtype.kind not in "fiu":
            raise ValueError(f"its captured '{name}' is not a numeric matrix")
        self.used[name] = arr
        return _Value("{" + name + "}", "matrix", arr.shape[0], arr.shape[1])

    def _matrix_product(self, matrix: _Value, x: _Value) -> _Value:
        """M*x on C×N data: rows×C times C×N, here (N, C) @ (C, rows)."""
        if not self.flat or x.kind != "array":
            raise ValueError(MATRIX_USE)
        if matrix.cols != x.rows:
            raise ValueError(
                f"a {matrix.rows}×{matrix.cols} matrix times {x.rows} channels"
            )
        return _Value(f"({x.expr} @ {matrix.expr}.T)", "array", matrix.rows)

    def _concatenate(self) -> _Value:
        """[a; b; ...]: MATLAB's vertical concatenation, along C on 'CB' data."""
        items = [self._no_matrix(self.sum())]
        while self.peek() and self.peek()[1] == ";":
            self.take()
            items.append(self._no_matrix(self.sum()))
        self.take("]")
        if len(items) == 1:
            return items[0]
        if not self.flat or any(v.kind != "array" for v in items):
            raise ValueError("[a; b] is translated only for arrays of 'CB' data")
        parts = ", ".join(_strip_outer(v.expr) for v in items)
        return _Value(
            f"torch.cat([{parts}], dim=1)", "array", sum(v.rows for v in items)
        )

    def _elementwise(self, op: str, left: _Value, right: _Value) -> _Value:
        self._no_matrix(left), self._no_matrix(right)
        if op in SCALAR_ONLY and left.kind != "scalar" and right.kind != "scalar":
            raise ValueError(f"'{op}' between two arrays is a matrix operation")
        if left.kind == "scalar" and right.kind == "scalar":
            kind, rows = "scalar", 0
        elif left.kind == "array" and right.kind == "array":
            if 1 not in (left.rows, right.rows) and left.rows != right.rows:
                raise ValueError(f"{left.rows} and {right.rows} channels do not match")
            kind, rows = "array", max(left.rows, right.rows)
        else:
            kind, rows = "array", max(left.rows, right.rows)
        return _Value(f"({left.expr} {BINARY[op]} {right.expr})", kind, rows)

    @staticmethod
    def _no_matrix(value: _Value) -> _Value:
        if value.kind == "matrix":
            raise ValueError(MATRIX_USE)
        return value

    def _clamp(self, name: str) -> _Value:
        self.take("(")
        a = self._no_matrix(self.sum())
        self.take(",")
        b = self._no_matrix(self.sum())
        self.take(")")
        if (a.kind == "scalar") == (b.kind == "scalar"):
            raise ValueError(f"{name}() needs one array and one number")
        tensor, number = (b, a) if a.kind == "scalar" else (a, b)
        bound = "min" if name == "max" else "max"
        return tensor._replace(
            expr=f"torch.clamp({_strip_outer(tensor.expr)}, {bound}={number.expr})"
        )

    def _reduce(self, name: str) -> _Value:
        """sum(x, k) / mean(x, k): over MATLAB dimension k of the input's format."""
        self.take("(")
        arg = self._no_matrix(self.sum())
        self.take(",")
        kind, dim = self.take()
        self.take(")")
        if (
            arg.kind == "scalar"
            or kind != "num"
            or not float(dim).is_integer()
            or float(dim) < 1
        ):
            raise ValueError(f"{name}() needs an array and a dimension number")
        if self.in_type is None:
            raise ValueError(f"{name}() needs the input's format")
        k = int(float(dim))
        letters = self.in_type.matlab_format
        if k > len(letters):  # a singleton dimension
            return arg
        if letters[k - 1] == "B" or (self.in_type.heads and k == 4):
            raise ValueError(f"{name}() over the batch dimension")
        axis = self.in_type.torch_dim(k)
        rows = 1 if letters[k - 1] == "C" else arg.rows
        return _Value(
            f"{REDUCTIONS[name]}({_strip_outer(arg.expr)}, dim={axis}, keepdim=True)",
            "array",
            rows,
        )


def translate(
    text: str,
    num_inputs: int,
    in_types: tuple[TensorType, ...] = (),
    captured: dict[str, np.ndarray] | None = None,
) -> Translation:
    """'@(x) 0.001*x' → '(0.001 * {0})'; raises ValueError outside the grammar."""
    m = re.fullmatch(r"\s*@\s*\(([^)]*)\)(.*)", text, re.S)
    if not m:
        raise ValueError("it is not an anonymous function")
    params = [p.strip() for p in m.group(1).split(",") if p.strip()]
    if len(params) != num_inputs or not all(p.isidentifier() for p in params):
        raise ValueError(f"it takes {len(params)} arguments for {num_inputs} inputs")
    parser = _Parser(m.group(2), params, in_types, captured)
    value = parser.parse()
    if value.kind == "scalar":
        raise ValueError("it does not use its input")
    return Translation(_strip_outer(value.expr), value.rows, parser.used)


def _strip_outer(expr: str) -> str:
    """'(a + b)' → 'a + b' when the parentheses wrap the whole expression."""
    if not (expr.startswith("(") and expr.endswith(")")):
        return expr
    depth = 0
    for i, ch in enumerate(expr):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth == 0 and i < len(expr) - 1:
            return expr
    return expr[1:-1]


@register(
    "nnet.cnn.layer.FunctionLayer",
    torch="the translated element-wise expression; M*x on CB data with a captured "
    "matrix M (a buffer) and [a; b] as torch.cat",
)
def function_layer(layer: Layer) -> Function:
    from codegen.stubs import captured_variables

    handle = layer.raw("PredictFcn")
    text = handle.text if isinstance(handle, FunctionHandle) and handle.text else ""
    text = text or layer.text("Description", "")
    outputs = int(layer.number("NumOutputs", 1))
    try:
        if outputs != 1:
            raise ValueError(f"it has {outputs} outputs")
        found = translate(
            text, len(layer.inputs), layer.in_types, captured_variables(layer.record)
        )
    except ValueError as exc:
        raise LayerError(
            f"its function {text!r} cannot be translated: {exc}.",
            hint="Only anonymous element-wise functions of the layer's inputs "
            "(numbers, + - .* ./ .^, exp, log, sqrt, abs, tanh, sigmoid, relu, "
            "max/min with a number, sum/mean over a dimension, ...) are translated, "
            "and on 'CB' data M*x with a captured matrix M and [a; b]; replace the "
            "layer in MATLAB or write its PyTorch code by hand.",
        ) from None
    first = layer.in_type
    if any(t != first for t in layer.in_types):
        raise LayerError("its inputs have different sizes.")
    out = first if first.heads else dataclasses.replace(first, channels=found.channels)
    constants = {
        k: np.ascontiguousarray(v, dtype=np.float32) for k, v in found.constants.items()
    }
    return Function(
        **layer.common(),
        expression=found.expression,
        constants=constants,
        out_types=(out,),
    )
