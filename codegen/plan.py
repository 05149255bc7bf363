"""The forward plan: which variable holds each value, when it is deleted, and
which steps overwrite their input.

Computed once per network, after naming; render, the module docstring and
``inspect`` all read the same plan.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from codegen.ir import CombineOp, ModuleNode, Network, Node, Port, TensorType

# Templates whose forward is more than one ``out = expression`` statement:
# their result cannot be written straight into a typed return variable.
_MULTI_STATEMENT = frozenset(
    {"input", "recurrent", "fold", "max_pool_indices", "word_embedding", "output"}
)

# Modules whose output is a new tensor that their backward pass does not read:
# a ReLU or an addition may overwrite it, as torchvision's ResNet does.
_OVERWRITABLE = {
    f"nn.{kind}{d}d"
    for kind in ("Conv", "ConvTranspose", "BatchNorm")
    for d in (1, 2, 3)
} | {"nn.Linear"}


@dataclass(frozen=True)
class Step:
    """One layer's statement(s) in forward.

    ``outs`` holds one variable per output port (``_`` for unused ports);
    ``alias`` keeps the output under a name when ``x`` moves on but the value
    is read again later (``identity = x``); ``free`` lists the names deleted
    after the step; ``in_place`` says the step overwrites its input
    (``nn.ReLU(inplace=True)``, ``x += skip``); ``annotated`` says the output
    is written as ``name: torch.Tensor = ...`` because forward returns it.
    """

    node: Node
    outs: tuple[str, ...]
    args: tuple[str, ...]
    alias: str = ""
    free: tuple[str, ...] = ()
    in_place: bool = False
    annotated: bool = False


@dataclass(frozen=True)
class ForwardPlan:
    """forward's signature, statements and return values."""

    inputs: tuple[str, ...]
    steps: tuple[Step, ...]
    returns: tuple[str, ...]
    input_layers: tuple[str, ...] = ()

    @property
    def in_place(self) -> frozenset[str]:
        """MATLAB names of the layers that overwrite their input."""
        return frozenset(s.node.name for s in self.steps if s.in_place)

    def variable(self, layer: str) -> str:
        """The variable that holds a layer's first output right after its step."""
        for s in self.steps:
            if s.node.name == layer:
                return s.outs[0]
        for spec_layer, name in zip(self.input_layers, self.inputs, strict=True):
            if spec_layer == layer:
                return name
        return ""


@dataclass
class _Draft:
    node: Node
    outs: list[str]
    args: list[str]
    alias: str = ""
    free: list[str] = field(default_factory=list)


def plan_forward(net: Network) -> ForwardPlan:
    """Variable names for the forward pass, as a person would choose them.

    Values used by the very next statement live in ``x``; a value that is
    also needed after ``x`` has moved on keeps a name after its layer
    (``stem_relu = x``, like the ``identity = x`` of a hand-written residual
    block); values needed only later are named after their layer (extra
    ports: the naming pass's ``<layer>_<port>``). Named values, and ``x``
    when it would otherwise linger, are deleted right after their last use.
    """
    nodes = {n.name: n for n in net.nodes}

    def resolve(port: Port) -> Port:
        node = nodes[port.layer]
        while node.elide and node.inputs:
            port = node.inputs[0]
            node = nodes[port.layer]
        return port

    layers = [n for n in net.nodes if not n.elide]
    end = len(layers)
    uses: dict[Port, list[int]] = {}
    for i, n in enumerate(layers):
        for p in n.inputs:
            uses.setdefault(resolve(p), []).append(i)
    for out in net.outputs:
        uses.setdefault(resolve(out.port), []).append(end)

    single_input = len(net.inputs) == 1
    in_x: Port | None = None  # the value x holds
    name_of: dict[Port, str] = {}
    defined_as: dict[Port, str] = {}
    drafts: list[_Draft] = []
    last_use: dict[str, int] = {}

    def read(port: Port) -> str:
        return "x" if port == in_x else name_of[port]

    for i, n in enumerate(layers):
        args = [read(resolve(p)) for p in n.inputs]
        outs, alias = [], ""
        x_before = in_x
        for k in range(len(n.out_types)):
            port = Port(layer=n.name, index=k)
            users = uses.get(port, [])
            if k:
                name = n.named(n.port_names[k]) if users else "_"
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
        draft = _Draft(n, outs, args, alias=alias)
        if x_before is not None and in_x == x_before and "x" in args:
            # x's value died here but this step's result went elsewhere
            if max(uses.get(x_before, [end])) <= i:
                draft.free.append("x")
                in_x = None
        drafts.append(draft)
    for name, idx in last_use.items():
        if idx < end:
            drafts[idx].free.append(name)
    inputs = tuple(defined_as[Port(layer=spec.layer)] for spec in net.inputs)
    returns = [read(resolve(o.port)) for o in net.outputs]
    _drop_unread_aliases(drafts, returns)
    annotated = _annotate_return(drafts, returns)
    steps = tuple(
        _decide_in_place(d, i, nodes, uses, resolve, annotated and i == end - 1)
        for i, d in enumerate(drafts)
    )
    back = [
        nodes[resolve(o.port).layer].out_types[resolve(o.port).index].time_last
        for o in net.outputs
    ]
    return ForwardPlan(
        inputs=inputs,
        steps=steps,
        returns=tuple(
            r + (".transpose(1, 2)" if b else "")
            for r, b in zip(returns, back, strict=True)
        ),
        input_layers=tuple(spec.layer for spec in net.inputs),
    )


def _drop_unread_aliases(drafts: list[_Draft], returns: list[str]) -> None:
    """An alias nothing reads by name (x still held the value) is dead."""
    read = {a for d in drafts for a in d.args} | set(returns)
    for d in drafts:
        if d.alias and d.alias not in read:
            for other in drafts:
                if d.alias in other.free:
                    other.free.remove(d.alias)
            d.alias = ""


def _annotate_return(drafts: list[_Draft], returns: list[str]) -> bool:
    """``y: torch.Tensor = self.fc(x)`` then ``return y`` instead of going
    through ``x``: mypy sees a typed return, ruff no needless reassignment."""
    if not drafts or returns != ["x"]:
        return False
    last = drafts[-1]
    if last.outs[:1] != ["x"] or last.alias or last.node.template in _MULTI_STATEMENT:
        return False
    last.outs[0] = last.node.ident
    returns[0] = last.node.ident
    return True


def _decide_in_place(
    d: _Draft,
    i: int,
    nodes: dict[str, Node],
    uses: dict[Port, list[int]],
    resolve: Callable[[Port], Port],
    annotated: bool,
) -> Step:
    """Overwrite the input where nothing else reads it.

    Saves one allocation per ReLU and per residual addition, which under
    glibc also saves the page faults of a heap regrown after trimming. A
    value read only by this step and made by an overwritable layer belongs
    to this step.
    """
    node = d.node
    ports = [resolve(p) for p in node.inputs]
    owned = [uses[p] == [i] and _overwritable(nodes[p.layer]) for p in ports]
    args = list(d.args)
    in_place = False
    if isinstance(node, ModuleNode) and node.template == "module":
        in_place = node.module.func == "nn.ReLU" and bool(owned) and owned[0]
    elif (
        node.template == "combine"
        and getattr(node, "op", None) is CombineOp.ADD
        and len(node.inputs) == 2
        and not any(getattr(node, "pres", ()))
        and not node.out_types[0].time
        and d.outs[0] == "x"
        and "x" in args
        and owned[args.index("x")]
        and _type(nodes, ports[args.index("x")]) == node.out_types[0]
    ):
        in_place = True
        if args[0] != "x":
            args.reverse()  # x += other; addition commutes exactly
    return Step(
        node=node,
        outs=tuple(d.outs),
        args=tuple(args),
        alias=d.alias,
        free=tuple(sorted(d.free)),
        in_place=in_place,
        annotated=annotated,
    )


def _overwritable(node: Node) -> bool:
    if isinstance(node, ModuleNode) and node.template in ("module", "padded", "linear"):
        return node.module.func in _OVERWRITABLE
    return node.template == "combine" and len(node.inputs) >= 2


def _type(nodes: dict[str, Node], port: Port) -> TensorType:
    return nodes[port.layer].out_types[port.index]


def unread_stores(plan: ForwardPlan) -> list[str]:
    """Stores in ``plan`` that nothing reads: each is a line a reviewer would cut.

    Walks the steps in order: a name written while its previous value is
    still unread, deleted unread, or left unread at the end is reported.
    """
    pending: dict[str, str] = {}  # name → the step that wrote it
    problems: list[str] = []
    for name in plan.inputs:
        pending[name] = "forward's arguments"
    for s in plan.steps:
        for a in s.args:
            pending.pop(a, None)
        if not s.node.inputs:
            continue  # an input layer: its value is forward's argument
        for name in [*s.outs, s.alias]:
            if name in ("", "_"):
                continue
            if name in pending:
                problems.append(f"{name} from {pending[name]} is overwritten unread")
            pending[name] = repr(s.node.name)
        if s.alias:
            pending.pop("x", None)  # `alias = x` reads x
        for name in s.free:
            if name in pending:
                problems.append(f"{name} from {pending.pop(name)} is deleted unread")
    for r in plan.returns:
        pending.pop(r.split(".", 1)[0], None)
    problems += [f"{n} from {w} is never read" for n, w in pending.items()]
    return problems
