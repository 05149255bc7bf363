"""mat2torch verify: compare a generated model with MATLAB semantics.

Without a reference file the NumPy reference of MATLAB semantics
(codegen.reference) runs on seeded random inputs; with ``--against REF.mat``
the data the user saved in MATLAB is the truth: ``X`` (or ``X1``, ``X2``, ...)
as passed to predict, ``Y`` (or ``Y1``, ...) as predict returned it, and
optionally ``names``/``acts``, a cell array of layer names and one of their
activations.
"""

from __future__ import annotations

import importlib.util
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from codegen import refcheck, stubs
from codegen import reference as R
from codegen.diagnostics import ConversionError
from codegen.ir import Network, TensorType
from codegen.matfile import list_variables, load_variables
from codegen.pipeline import (
    MODEL_NAME,
    build,
    example_steps,
    load_graph,
    untrained_layers,
)


@dataclass
class Comparison:
    what: str  # "output 1" or "layer 'conv_1'"
    max_abs: float
    max_rel: float
    ok: bool


@dataclass
class Report:
    comparisons: list[Comparison] = field(default_factory=list)
    first_divergence: str = ""
    source: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.comparisons)

    def render(self) -> str:
        lines = [f"Compared with {self.source}:"]
        width = max((len(c.what) for c in self.comparisons), default=0)
        for c in self.comparisons:
            verdict = "ok" if c.ok else "DIFFERS"
            lines.append(
                f"  {c.what.ljust(width)}  max abs {c.max_abs:.3g}  max rel {c.max_rel:.3g}  {verdict}"
            )
        lines += [f"  note: {note}" for note in self.notes]
        if self.first_divergence:
            lines.append(f"First layer that diverges: {self.first_divergence}.")
        lines.append("PASS" if self.ok else "FAIL: outside the tolerance.")
        return "\n".join(lines)


def compare(
    actual: np.ndarray, expected: np.ndarray, what: str, atol: float, rtol: float
) -> Comparison:
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if actual.shape != expected.shape:
        if actual.size != expected.size:
            return Comparison(
                f"{what} (shape {actual.shape} vs {expected.shape})",
                np.inf,
                np.inf,
                False,
            )
        expected = expected.reshape(actual.shape)
    diff = np.abs(actual - expected)
    # NaN or Inf weights give NaN or the same Inf in both: that is agreement
    diff[(actual == expected) | (np.isnan(actual) & np.isnan(expected))] = 0.0
    scale = float(np.nanmax(np.abs(expected), initial=0.0))
    max_abs = float(np.max(diff, initial=0.0))
    max_rel = max_abs / scale if scale else (0.0 if max_abs == 0 else np.inf)
    ok = bool(np.all(diff <= atol + rtol * scale))
    return Comparison(what, max_abs, max_rel, ok)


def load_generated(out_dir: Path) -> Any:
    path = Path(out_dir) / MODEL_NAME
    if not path.is_file():
        raise ConversionError(
            f"{path} does not exist.",
            hint="Convert the network first: mat2torch convert FILE -o DIR.",
        )
    name = f"mat2torch_verify_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def verify(
    path: Path,
    out_dir: Path,
    *,
    var: str | None = None,
    against: Path | None = None,
    atol: float = 1e-5,
    rtol: float = 1e-4,
    seed: int = 0,
) -> Report:
    import torch

    loaded = load_graph(Path(path), var)
    net, _ = build(loaded)
    module = load_generated(out_dir)
    model = module.load_model()
    left = stubs.unimplemented(model, net)
    if left:
        raise ConversionError(
            f"{Path(path).name}: {len(left)} stubbed layer(s) are not implemented yet: "
            + ", ".join(f"'{n.name}' ({n.module.func})" for n in left)
            + f" in {Path(out_dir) / 'model.py'}.",
            hint="Write their forward(), then verify again.",
        )
    if against is None and stubs.stubs(net):
        raise ConversionError(
            f"{Path(path).name}: the NumPy reference cannot compute the hand-written "
            "stub layers " + ", ".join(f"'{n.name}'" for n in stubs.stubs(net)) + ".",
            hint="Pass --against REF.mat with X and Y = predict(net, X) saved in MATLAB.",
        )
    if against is None:
        untrained = untrained_layers(model, net.state())
        if untrained:
            raise ConversionError(
                f"{Path(path).name}: the .mat file holds no trained weights for "
                f"{', '.join(untrained)}. There is no MATLAB behaviour to compare with.",
                hint="Verify a trained network, or pass --against with data saved in MATLAB.",
            )
        return _against_reference(loaded.record, net, model, atol, rtol, seed, torch)
    ref = Path(against)
    return refcheck.guarded(
        ref, net, lambda: _against_file(ref, net, model, atol, rtol, torch)
    )


# --------------------------------------------------------------------------
# against the NumPy reference


def _random_input(t: TensorType, steps: int, rng: np.random.Generator) -> np.ndarray:
    shape = (*t.spatial, t.channels, 2) if t.spatial else (t.channels, 2)
    if t.time:
        shape = (*shape, steps)
    return rng.standard_normal(shape).astype(np.float32)


def matlab_to_torch_input(x: np.ndarray, t: TensorType) -> np.ndarray:
    """A MATLAB-layout batch (S...×C×N, C×N or C×N×T) in the model's layout."""
    if t.time and not t.spatial:
        return x.transpose(1, 2, 0)
    if t.time:  # S...×C×N×T → N×T×C×S...
        n = x.ndim
        return x.transpose(n - 2, n - 1, n - 3, *range(n - 3))
    if x.ndim == 2:
        return x.T
    return x.transpose(x.ndim - 1, x.ndim - 2, *range(x.ndim - 2))


def _against_reference(record, net: Network, model, atol, rtol, seed, torch) -> Report:
    layers, pairs = R.matlab_graph(record)
    rng = np.random.default_rng(seed)
    xs = {
        s.layer: _random_input(s.type, example_steps(net, s), rng) for s in net.inputs
    }
    args = [
        torch.from_numpy(
            np.ascontiguousarray(matlab_to_torch_input(xs[s.layer], s.type))
        )
        for s in net.inputs
    ]
    if pairs is None:
        values = R.run_layers(layers, xs[net.inputs[0].layer])
        by_name = {node.name: [v] for node, v in zip(net.nodes, values, strict=True)}
    else:
        by_name = R.run_graph(layers, pairs, xs)
    report = Report(
        source=f"the NumPy reference of MATLAB semantics (random inputs, seed {seed})"
    )
    with torch.no_grad():
        outputs = model(*args)
        acts = _activations(net, model, args)
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    for i, (y, spec) in enumerate(zip(outputs, net.outputs, strict=True)):
        expected = R.to_torch(by_name[spec.port.layer][spec.port.index])
        report.comparisons.append(
            compare(
                y.numpy(), expected, f"output {i + 1} ({spec.port.layer!r})", atol, rtol
            )
        )
    _compare_layers(
        report, net, acts, {k: R.to_torch(v[0]) for k, v in by_name.items()}, atol, rtol
    )
    return report


def _activations(net: Network, model: Any, args: list[Any]) -> dict[str, Any]:
    """The model's layer outputs, sequences as (N, T, C) like the reference.

    1-D convolutions and their neighbours hold sequences as (N, C, T) in the
    generated code; the IR says which.
    """
    if not hasattr(model, "activations"):
        return {}
    acts = model.activations(*args)
    for node in net.nodes:
        if node.name in acts and node.out_types and node.out_types[0].time_last:
            acts[node.name] = acts[node.name].transpose(1, 2)
    return acts


def _compare_layers(
    report: Report, net: Network, acts: dict, expected: dict, atol: float, rtol: float
) -> None:
    for node in net.nodes:  # topological order: the first failure is the culprit
        if node.name not in acts or node.name not in expected:
            continue
        c = compare(
            acts[node.name].numpy(),
            expected[node.name],
            f"layer {node.name!r}",
            atol,
            rtol,
        )
        report.comparisons.append(c)
        if not c.ok and not report.first_divergence:
            report.first_divergence = f"{node.name!r} ({node.short_class})"


# --------------------------------------------------------------------------
# against data saved in MATLAB


def _numbered(variables: dict[str, Any], letter: str, count: int) -> list[Any]:
    if count == 1 and letter in variables:
        return [variables[letter]]
    names = [f"{letter}{i + 1}" for i in range(count)]
    missing = [n for n in names if n not in variables]
    if missing:
        raise ConversionError(
            f"the reference file has no {' or '.join(missing)}.",
            hint=f"Save {letter} (one input/output) or {letter}1, {letter}2, ... in MATLAB.",
        )
    return [variables[n] for n in names]


def _to_model_layout(
    arr: np.ndarray, like: tuple[int, ...], prefer_transposed: bool
) -> np.ndarray:
    """MATLAB's layout of ``arr`` → the shape ``like`` of the model's tensor."""
    arr = np.asarray(arr, dtype=np.float32)
    candidates = []
    if arr.ndim >= 3:
        candidates.append(
            arr.transpose(arr.ndim - 1, arr.ndim - 2, *range(arr.ndim - 2))
        )
        if arr.ndim == 3:
            candidates.append(arr.transpose(1, 2, 0))  # C×N×T → N×T×C
    squeezed = arr.reshape([s for s in arr.shape if s != 1] or [1])
    two_d = [squeezed.T, squeezed] if prefer_transposed else [squeezed, squeezed.T]
    if arr.ndim == 2:  # a dlnetwork's C×N before its N×C: a square one is ambiguous
        two_d = [arr.T, arr, *two_d] if prefer_transposed else [arr, *two_d]
    candidates += two_d
    for c in candidates:
        if c.shape == tuple(like):
            return c
    for c in candidates:
        if c.size == int(np.prod(like)) and c.ndim == 2 and len(like) == 2:
            return c.reshape(like)
    raise ConversionError(
        f"a reference array of size {'×'.join(map(str, arr.shape))} does not match the "
        f"model's tensor of shape {tuple(like)}.",
        hint="Save X and Y exactly as passed to and returned by predict.",
    )


def _scores_layout(arr: np.ndarray, like: tuple[int, ...]) -> np.ndarray:
    """MATLAB's keys×queries×heads×N attention scores → (N, heads, queries, keys).

    Keys and queries have the same length, so a shape match alone could not
    tell them apart: the permutation is fixed.
    """
    n, heads, queries, keys = like
    arr = np.asarray(arr, dtype=np.float32)
    if arr.size != n * heads * queries * keys:
        raise ConversionError(
            f"a reference array of size {'×'.join(map(str, arr.shape))} does not "
            f"hold attention scores of {keys}×{queries}×{heads}×{n}.",
            hint="Save the scores exactly as predict returns them.",
        )
    return arr.reshape((keys, queries, heads, n), order="F").transpose(3, 2, 1, 0)


def _against_file(ref: Path, net: Network, model, atol, rtol, torch) -> Report:
    names = [v.name for v in list_variables(ref)]
    variables = load_variables(ref, names)
    refcheck.check_numbers(ref, variables)
    xs = _numbered(variables, "X", len(net.inputs))
    ys = _numbered(variables, "Y", len(net.outputs))
    prefer_t = net.matlab_class.startswith("dlnetwork")
    sequence = net.inputs[0].type.time
    report = Report(source=ref.name, notes=refcheck.nan_notes(variables))
    if sequence and isinstance(xs[0], list):  # a cell array of C×T sequences
        results = []
        with torch.no_grad():
            for i in range(len(xs[0])):
                args = [
                    torch.from_numpy(
                        np.ascontiguousarray(np.asarray(x[i], np.float32).T[None])
                    )
                    for x in xs
                ]
                out = model(*args)
                results.append(out if isinstance(out, tuple) else (out,))
        for k, spec in enumerate(net.outputs):
            got = [r[k].numpy() for r in results]
            y = ys[k]
            if spec.type.heads and isinstance(y, list):  # T×T×heads per sequence
                actual = np.concatenate([g.reshape(-1) for g in got])
                expected = np.concatenate(
                    [
                        _scores_layout(e, g.shape).reshape(-1)
                        for e, g in zip(y, got, strict=True)
                    ]
                )
            elif isinstance(y, list):  # one K×T per sequence
                actual = np.concatenate([g.reshape(-1) for g in got])
                expected = np.concatenate(
                    [np.asarray(e, np.float64).T.reshape(-1) for e in y]
                )
            else:
                actual = np.concatenate(got, axis=0)
                expected = _to_model_layout(y, actual.shape, prefer_t)
            report.comparisons.append(
                compare(
                    actual,
                    expected,
                    f"output {k + 1} ({spec.port.layer!r})",
                    atol,
                    rtol,
                )
            )
        return report
    args = []
    for x, spec in zip(xs, net.inputs, strict=True):
        x = np.asarray(x, np.float32)
        t = spec.type
        if not t.spatial and not t.time and x.ndim == 2 and x.shape[0] != t.channels:
            arr = x  # predict's N×C feature matrix
        else:
            arr = matlab_to_torch_input(x if x.ndim > 1 else x[:, None], t)
        args.append(torch.from_numpy(np.ascontiguousarray(arr)))
    with torch.no_grad():
        outputs = model(*args)
        acts = _activations(net, model, args)
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    for k, (y, spec) in enumerate(zip(outputs, net.outputs, strict=True)):
        expected = (
            _scores_layout(ys[k], tuple(y.shape))
            if spec.type.heads
            else _to_model_layout(ys[k], tuple(y.shape), prefer_t)
        )
        report.comparisons.append(
            compare(
                y.numpy(), expected, f"output {k + 1} ({spec.port.layer!r})", atol, rtol
            )
        )
    layer_names = variables.get("names")
    layer_acts = variables.get("acts")
    if isinstance(layer_names, str):
        layer_names, layer_acts = [layer_names], [layer_acts]
    if isinstance(layer_names, list) and isinstance(layer_acts, list):
        known = {n.name for n in net.nodes}
        expected = {}
        if len(layer_names) != len(layer_acts):
            raise ConversionError(
                f"names lists {len(layer_names)} layers but acts holds "
                f"{len(layer_acts)} activations."
            )
        for name, value in zip(layer_names, layer_acts, strict=True):
            name = str(name)
            if name in acts:
                expected[name] = _to_model_layout(
                    value, tuple(acts[name].shape), prefer_t
                )
            elif name in known:
                report.notes.append(
                    f"layer {name!r} is computed inside forward(), not by a submodule; "
                    "its activation is not compared."
                )
            else:
                report.notes.append(f"{name!r} is not a layer of this network.")
        _compare_layers(report, net, acts, expected, atol, rtol)
    return report
