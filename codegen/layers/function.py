"""functionLayer: element-wise MATLAB expressions translated to torch.

A .mat file keeps a function layer's handle only as text (its Description,
e.g. '@(x) 0.001*x'). Anonymous functions built from numbers, the layer's
inputs, element-wise operators and a fixed list of functions are translated
by a small parser that emits only whitelisted tokens; anything else (a named
function such as '@zeropad', a captured variable, a matrix product) is
refused with the function's text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

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
    r"|(?P<op>\.\*|\./|\.\^|[-+*/^(),]))"
)


@dataclass(frozen=True, kw_only=True, eq=False)
class Function(Node):
    template: ClassVar[str] = "function"
    expression: str  # Python, with {0}, {1}, ... for the inputs


class _Parser:
    """Recursive descent over MATLAB's precedence: + - < * / < unary < ^."""

    def __init__(
        self, text: str, params: list[str], in_type: TensorType | None = None
    ) -> None:
        self.tokens = self._lex(text)
        self.pos = 0
        self.params = params
        self.in_type = in_type

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

    def parse(self) -> tuple[str, bool]:
        expr, scalar = self.sum()
        if self.peek() is not None:
            raise ValueError(f"unexpected {self.peek()[1]!r}")
        return expr, scalar

    def sum(self) -> tuple[str, bool]:
        left, scalar = self.product()
        while (tok := self.peek()) and tok[1] in ("+", "-"):
            self.take()
            right, rs = self.product()
            left, scalar = f"({left} {tok[1]} {right})", scalar and rs
        return left, scalar

    def product(self) -> tuple[str, bool]:
        left, scalar = self.unary()
        while (tok := self.peek()) and tok[1] in (".*", "./", "*", "/"):
            self.take()
            right, rs = self.unary()
            self._check_scalar(tok[1], scalar, rs)
            left, scalar = f"({left} {BINARY[tok[1]]} {right})", scalar and rs
        return left, scalar

    def unary(self) -> tuple[str, bool]:
        if (tok := self.peek()) and tok[1] in ("-", "+"):
            self.take()
            inner, scalar = self.unary()
            return (f"(-{inner})" if tok[1] == "-" else inner), scalar
        return self.power()

    def power(self) -> tuple[str, bool]:
        base, scalar = self.atom()
        if (tok := self.peek()) and tok[1] in (".^", "^"):
            self.take()
            exponent, es = self.unary()
            self._check_scalar(tok[1], scalar, es)
            return f"({base} ** {exponent})", scalar and es
        return base, scalar

    def atom(self) -> tuple[str, bool]:
        kind, value = self.take()
        if kind == "num":
            return lit(float(value)), True
        if value == "(":
            inner = self.sum()
            self.take(")")
            return inner
        if kind == "name":
            if value in self.params:
                return "{" + str(self.params.index(value)) + "}", False
            if value in ("max", "min"):
                return self._clamp(value)
            if value in REDUCTIONS:
                return self._reduce(value)
            if value in FUNCTIONS:
                template, _ = FUNCTIONS[value]
                self.take("(")
                arg, scalar = self.sum()
                self.take(")")
                return template.format(arg), scalar
            raise ValueError(f"'{value}' is not a known function or input")
        raise ValueError(f"unexpected {value!r}")

    def _clamp(self, name: str) -> tuple[str, bool]:
        self.take("(")
        a, sa = self.sum()
        self.take(",")
        b, sb = self.sum()
        self.take(")")
        if sa == sb:
            raise ValueError(f"{name}() needs one array and one number")
        tensor, number = (b, a) if sa else (a, b)
        bound = "min" if name == "max" else "max"
        return f"torch.clamp({tensor}, {bound}={number})", False

    def _reduce(self, name: str) -> tuple[str, bool]:
        """sum(x, k) / mean(x, k): over MATLAB dimension k of the input's format."""
        self.take("(")
        arg, scalar = self.sum()
        self.take(",")
        kind, dim = self.take()
        self.take(")")
        if scalar or kind != "num" or not float(dim).is_integer() or float(dim) < 1:
            raise ValueError(f"{name}() needs an array and a dimension number")
        if self.in_type is None:
            raise ValueError(f"{name}() needs the input's format")
        k = int(float(dim))
        if k > len(self.in_type.matlab_format):  # a singleton dimension
            return arg, False
        if self.in_type.matlab_format[k - 1] == "B" or (self.in_type.heads and k == 4):
            raise ValueError(f"{name}() over the batch dimension")
        axis = self.in_type.torch_dim(k)
        return f"{REDUCTIONS[name]}({arg}, dim={axis}, keepdim=True)", False

    @staticmethod
    def _check_scalar(op: str, left: bool, right: bool) -> None:
        if op in SCALAR_ONLY and not (left or right):
            raise ValueError(f"'{op}' between two arrays is a matrix operation")


def translate(text: str, num_inputs: int, in_type: TensorType | None = None) -> str:
    """'@(x) 0.001*x' → '(0.001 * {0})'; raises ValueError if not element-wise."""
    m = re.fullmatch(r"\s*@\s*\(([^)]*)\)(.*)", text, re.S)
    if not m:
        raise ValueError("it is not an anonymous function")
    params = [p.strip() for p in m.group(1).split(",") if p.strip()]
    if len(params) != num_inputs or not all(p.isidentifier() for p in params):
        raise ValueError(f"it takes {len(params)} arguments for {num_inputs} inputs")
    expr, scalar = _Parser(m.group(2), params, in_type).parse()
    if scalar:
        raise ValueError("it does not use its input")
    return _strip_outer(expr)


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
    "nnet.cnn.layer.FunctionLayer", torch="the translated element-wise expression"
)
def function_layer(layer: Layer) -> Function:
    handle = layer.raw("PredictFcn")
    text = handle.text if isinstance(handle, FunctionHandle) and handle.text else ""
    text = text or layer.text("Description", "")
    outputs = int(layer.number("NumOutputs", 1))
    try:
        if outputs != 1:
            raise ValueError(f"it has {outputs} outputs")
        expression = translate(text, len(layer.inputs), layer.in_types[0])
    except ValueError as exc:
        raise LayerError(
            f"its function {text!r} cannot be translated: {exc}.",
            hint="Only anonymous element-wise functions of the layer's inputs "
            "(numbers, + - .* ./ .^, exp, log, sqrt, abs, tanh, sigmoid, relu, "
            "max/min with a number, sum/mean over a dimension, ...) are translated; "
            "replace the layer in "
            "MATLAB or write its PyTorch code by hand.",
        ) from None
    first = layer.in_type
    if any(t != first for t in layer.in_types):
        raise LayerError("its inputs have different sizes.")
    return Function(**layer.common(), expression=expression, out_types=(first,))
