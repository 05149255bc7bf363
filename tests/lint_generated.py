"""Lint generated files as a PyTorch reviewer would: ruff ALL and mypy --strict.

Shared by tests/test_generated_lint.py, the nox lint session and
benchmarks/readability.py.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REAL = REPO.parent / "shared" / "fixtures" / "real"
# The rules a reviewer may waive for generated code: docstring style, line
# length (black's), formatter conflicts, literals, long forward()s.
RUFF_IGNORE = (
    "D,E501,COM812,ISC001,CPY001,ERA001,PLR2004,PLR0913,PLR0915,PLR0912,C901,"
    "FBT001,FBT002,S101"
)
_LITERAL_DATA = re.compile(
    r"^(CLASSES|CLASS_WEIGHTS|ANCHOR_BOXES|LEARN_FACTORS|GATE_FACTORS|BATCHNORM_FOLDS"
    r"|MATLAB_NAMES|NOT_LAYER_OUTPUTS)(_\w+)?$"
)


def ruff_findings(code: str) -> list[str]:
    """ruff --select ALL on one file's text (read from stdin, so rules about
    where a file lies, such as INP001, do not apply)."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ruff",
            "check",
            "--isolated",
            "--select",
            "ALL",
            "--ignore",
            RUFF_IGNORE,
            "--target-version",
            "py310",
            "--output-format",
            "json",
            "--stdin-filename",
            "model.py",
            "-",
        ],
        input=code,
        capture_output=True,
        text=True,
        check=False,
    )
    return [
        f"{f['location']['row']}: {f['code']} {f['message']}"
        for f in json.loads(proc.stdout or "[]")
    ]


def mypy_findings(files: dict[str, str], folder: Path) -> dict[str, list[str]]:
    """mypy --strict over many generated files at once, each its own module."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, code in files.items():
        path = folder / f"{name}.py"
        path.write_text(code)
        paths.append(path)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-error-summary",
            "--cache-dir",
            str(folder / ".mypy_cache"),
            *map(str, paths),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    found: dict[str, list[str]] = {name: [] for name in files}
    for line in proc.stdout.splitlines():
        head, _, rest = line.partition(": error: ")
        if rest:
            found[Path(head.split(":", 1)[0]).stem].append(rest)
        elif line.strip() and ": note:" not in line:
            raise RuntimeError(f"mypy: {line}")
    return found


def network_share(code: str) -> float:
    """Non-blank lines of the network's ``__init__`` + ``forward`` over all
    non-blank lines, literal data (class names, class weights, anchors, factor
    tables) left out. The network is the class load_model() builds and every
    class its ``__init__`` methods instantiate (layer helpers, stubs), not
    the loss classes."""
    tree = ast.parse(code)
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    literal: set[int] = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and _LITERAL_DATA.match(t.id) for t in node.targets
        ):
            literal |= set(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    loader = next(
        n
        for n in tree.body
        if isinstance(n, ast.FunctionDef) and n.name == "load_model"
    )
    todo = [n for n in _called(loader) if n in classes]
    seen: set[str] = set()
    network: set[int] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for f in classes[name].body:
            if isinstance(f, ast.FunctionDef) and f.name in ("__init__", "forward"):
                network |= set(range(f.lineno, (f.end_lineno or f.lineno) + 1))
                if f.name == "__init__":
                    todo += [n for n in _called(f) if n in classes]
    filled = {i for i, line in enumerate(code.splitlines(), 1) if line.strip()}
    filled -= literal
    return len(network & filled) / len(filled)


def _called(node: ast.AST) -> list[str]:
    """Names called (``Name(...)``) anywhere inside ``node``."""
    return [
        n.func.id
        for n in ast.walk(node)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
    ]


def goldens() -> dict[str, str]:
    return {
        f"golden_{p.parent.name}": p.read_text()
        for p in sorted((REPO / "generated_examples").glob("*/model.py"))
    }


def real_conversions() -> Iterator[tuple[str, object]]:
    """(name, Result) of every network in ../shared/fixtures/real that converts."""
    from codegen import matconvnet
    from codegen.diagnostics import ConversionError
    from codegen.matfile import list_variables, load_variables
    from codegen.pipeline import convert, is_network_variable, nested_networks

    for path in sorted(REAL.glob("*.mat")):
        try:
            names = [
                v.name
                for v in list_variables(path)
                if is_network_variable(v) or matconvnet.holds_network(path, v)
            ]
        except ConversionError:
            continue
        for name in names:
            # a detector that saves two struct networks asks for one of them
            record = load_variables(path, [name])[name]
            inner = nested_networks(record)
            for var in [f"{name}.{n}" for n in inner] if inner else [name]:
                try:
                    result = convert(path, None, var=var, check=False)
                except ConversionError:
                    continue  # refusals are test_real_files' business
                yield re.sub(r"\W+", "_", f"real_{path.stem}_{var}"), result
