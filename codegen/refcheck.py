"""Checks on a user's REF.mat for ``verify --against``.

The reference file is as untrusted as the network file: it may hold text
where numbers belong, arrays of the wrong size, or NaNs. Every problem is
answered with a sentence naming REF.mat and the variable, never a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from codegen.diagnostics import ConversionError
from codegen.ir import Network

_HINT = (
    "Save X and Y exactly as passed to and returned by predict: "
    "save ref.mat X Y (see the README)."
)


def check_numbers(ref: Path, variables: dict[str, Any]) -> None:
    """X.., Y.. and acts must be numeric arrays or cells of them."""
    for name, value in variables.items():
        if name[:1] not in ("X", "Y") or not (name[1:].isdigit() or not name[1:]):
            if name != "acts":
                continue
        for item in value if isinstance(value, list) else [value]:
            if not isinstance(item, np.ndarray) or item.dtype.kind not in "biuf":
                raise ConversionError(
                    f"{ref.name}: variable '{name}' holds {_kind(item)}, not numbers.",
                    hint=_HINT,
                )
            if item.size == 0:
                raise ConversionError(
                    f"{ref.name}: variable '{name}' is empty.", hint=_HINT
                )


def nan_notes(variables: dict[str, Any]) -> list[str]:
    """Notes on NaNs in the reference outputs (legitimate with NaN weights)."""
    notes = []
    for name, value in variables.items():
        if name[:1] == "Y" and (name[1:].isdigit() or not name[1:]):
            arrays = value if isinstance(value, list) else [value]
            count = sum(
                int(np.isnan(np.asarray(a, np.float64)).sum())
                for a in arrays
                if isinstance(a, np.ndarray) and a.dtype.kind == "f"
            )
            if count:
                notes.append(
                    f"the reference {name} holds {count:,} NaN value(s); they match "
                    "only NaNs of the model."
                )
    return notes


def guarded(ref: Path, net: Network, run: Callable[[], Any]) -> Any:
    """``run()``, with failures caused by the reference data put in words."""
    try:
        return run()
    except ConversionError as exc:
        if exc.message.startswith(ref.name):
            raise
        raise ConversionError(f"{ref.name}: {exc.message}", hint=exc.hint) from None
    except (ValueError, RuntimeError, IndexError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        expected = "; ".join(
            f"input {s.layer!r} takes {s.type.matlab} ({s.type.matlab_format})"
            for s in net.inputs
        )
        raise ConversionError(
            f"{ref.name}: its arrays do not fit the network ({expected}): "
            f"{type(exc).__name__}: {first}",
            hint=_HINT,
        ) from None


def _kind(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"a {'×'.join(map(str, value.shape))} {value.dtype} array"
    if isinstance(value, str):
        return f"the text {value[:30]!r}"
    return f"a {type(value).__name__}"
