"""Untrusted text from a .mat file, made safe for the generated file's prose."""

from __future__ import annotations


def doc(text: str) -> str:
    """An untrusted string shown inside a docstring: its repr, made inert."""
    return repr(str(text)).replace("\\", "\\\\").replace('"', '\\"')


def plain_sizes(text: str) -> str:
    """MATLAB's ``32×32×3`` as its documentation writes it, ``32-by-32-by-3``.

    Generated files stay ASCII in their prose: linters flag ``×`` as a
    look-alike of ``x``.
    """
    return text.replace("×", "-by-")
