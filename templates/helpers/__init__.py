"""Helpers pasted into generated model.py files, kept here as real modules.

Each module defines what one kind of layer needs and PyTorch lacks; ruff,
mypy and the tests read them like any other code. codegen.helpers pastes a
helper (without its docstring and imports) into a file that uses it.
"""
