"""black with a fixed mode, and a structural check of the generated module."""

from __future__ import annotations

import ast
import contextlib
import functools
import os
import signal
from collections.abc import Callable, Iterator
from typing import Any


@functools.cache
def mode() -> Any:
    """black's mode, pinned (black is imported on first use: the pipeline
    imports it while the file is read, or the format child does)."""
    import black

    return black.Mode(target_versions={black.TargetVersion.PY310}, line_length=88)


def format_source(text: str) -> str:
    """Format with the pinned black, once (the tests check it is stable)."""
    import black

    return black.format_str(text, mode=mode())


@contextlib.contextmanager
def format_later(text: str) -> Iterator[Callable[[], str]]:
    """Start ``format_source(text)`` in a forked child; inside the block, call
    the yielded function to get the formatted text.

    black takes about a second on a ResNet-50-sized file; the pipeline runs
    its self-check meanwhile on the other core. Where fork does not exist,
    or the child fails, black runs here (so its own error surfaces). Leaving
    the block early stops the child.
    """
    if not hasattr(os, "fork"):
        yield lambda: format_source(text)
        return
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 1
        try:
            os.close(read_fd)
            data = format_source(text).encode()
            with os.fdopen(write_fd, "wb") as out:
                out.write(data)
            code = 0
        finally:
            os._exit(code)
    os.close(write_fd)
    pipe = os.fdopen(read_fd, "rb")
    done: list[str] = []

    def result() -> str:
        if not done:
            data = pipe.read()
            _, status = os.waitpid(pid, 0)
            ok = os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
            done.append(data.decode() if ok else format_source(text))
        return done[0]

    try:
        yield result
    finally:
        pipe.close()
        if not done:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


def top_level_names(text: str) -> set[str]:
    """Names the module defines at top level.

    The pipeline compares them with what it meant to emit: a layer name that
    escaped into code would show up here as a stray definition.
    """
    names: set[str] = set()
    for stmt in ast.parse(text).body:
        if isinstance(stmt, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(stmt.name)
        elif isinstance(stmt, ast.Assign):
            for target in stmt.targets:
                if isinstance(target, ast.Name):
                    names.add(target.id)
        elif not isinstance(stmt, (ast.Import, ast.ImportFrom, ast.Expr)):
            names.add(type(stmt).__name__)
    return names
