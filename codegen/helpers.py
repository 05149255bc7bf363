"""Helpers pasted into generated files: real modules under templates/helpers/.

A helper module holds what one kind of layer needs and PyTorch lacks. It is
ordinary Python (ruff, mypy and the tests read it); pasting it drops its
docstring and imports, follows its relative imports to the helpers it needs,
and hands its other imports to the generated file's import block.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import cache
from pathlib import Path


def templates_dir() -> Path:
    """``templates/`` of a checkout, or its copy inside an installed wheel."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "templates", here.parent / "templates"):
        if (candidate / "model.py.jinja").is_file():
            return candidate
    raise FileNotFoundError("mat2torch templates are missing from this installation")


@dataclass(frozen=True)
class Helper:
    """One helper module, ready to paste."""

    name: str
    code: str  # the module without docstring and imports
    defines: frozenset[str]  # top-level names it defines
    needs: tuple[str, ...]  # helpers it imports
    imports: tuple[str, ...]  # its other import statements


@cache
def load(name: str) -> Helper:
    path = templates_dir() / "helpers" / f"{name}.py"
    text = path.read_text(encoding="utf-8")
    tree = ast.parse(text)
    lines = text.splitlines()
    needs: list[str] = []
    imports: list[str] = []
    start = len(lines)
    for stmt in tree.body:
        if isinstance(stmt, ast.ImportFrom) and stmt.level:
            needs.append(str(stmt.module))
        elif isinstance(stmt, ast.ImportFrom) and stmt.module == "__future__":
            continue
        elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
            imports.append(ast.unparse(stmt))
        elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            continue  # the module docstring
        else:
            first = min([stmt.lineno, *(d.lineno for d in _decorators(stmt))])
            start = min(start, first - 1)
    defines = frozenset(name for stmt in tree.body for name in _defined(stmt))
    return Helper(
        name=name,
        code="\n".join(lines[start:]).strip(),
        defines=defines,
        needs=tuple(needs),
        imports=tuple(imports),
    )


def _decorators(stmt: ast.stmt) -> list[ast.expr]:
    return list(getattr(stmt, "decorator_list", []))


def _defined(stmt: ast.stmt) -> list[str]:
    if isinstance(stmt, (ast.FunctionDef, ast.ClassDef)):
        return [stmt.name]
    if isinstance(stmt, ast.Assign):
        return [t.id for t in stmt.targets if isinstance(t, ast.Name)]
    return []


def closure(names: tuple[str, ...] | list[str] | set[str]) -> list[Helper]:
    """The helpers ``names`` and those they need, each once, needed ones first."""
    out: dict[str, Helper] = {}

    def add(name: str) -> None:
        if name in out:
            return
        helper = load(name)
        for need in helper.needs:
            add(need)
        out[name] = helper

    for name in sorted(names):
        add(name)
    return list(out.values())


@cache
def helper_names() -> frozenset[str]:
    """Every name any helper can define in a generated file."""
    files = sorted((templates_dir() / "helpers").glob("[!_]*.py"))
    return frozenset(n for f in files for n in load(f.stem).defines)
