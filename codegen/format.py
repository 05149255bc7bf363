"""black with a fixed mode, and a structural check of the generated module."""

from __future__ import annotations

import black
import libcst as cst

MODE = black.Mode(target_versions={black.TargetVersion.PY310}, line_length=88)


def format_source(text: str) -> str:
    """Format with the pinned black, once (the tests check it is stable)."""
    return black.format_str(text, mode=MODE)


def top_level_names(text: str) -> set[str]:
    """Names the module defines at top level (parsed with libcst).

    The pipeline compares them with what it meant to emit: a layer name that
    escaped into code would show up here as a stray definition.
    """
    module = cst.parse_module(text)
    names: set[str] = set()
    for stmt in module.body:
        if isinstance(stmt, (cst.ClassDef, cst.FunctionDef)):
            names.add(stmt.name.value)
        elif isinstance(stmt, cst.SimpleStatementLine):
            for small in stmt.body:
                if isinstance(small, cst.Assign):
                    for target in small.targets:
                        if isinstance(target.target, cst.Name):
                            names.add(target.target.value)
                elif isinstance(small, (cst.Import, cst.ImportFrom, cst.Expr)):
                    continue
                else:
                    names.add(type(small).__name__)
        else:
            names.add(type(stmt).__name__)
    return names
