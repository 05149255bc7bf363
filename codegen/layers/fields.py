"""Hyper-parameters checked before any handler reads them.

A damaged or hand-edited file can say ``Probability = 2^63``, ``Stride = -1``
or ``FilterSize = 1e9``. MATLAB's own constructors refuse such values, so a
file holding one was not written by MATLAB as it is; PyTorch would reject
some only inside the check forward pass and try to allocate others. One
table, applied to every layer whatever its handler, names the field and the
value instead.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

# No single size in a real network comes near this (the widest layers of the
# corpus have a few tens of thousands of units); beyond it a value is damage.
MAX_SIZE = 1 << 24

# field → (smallest allowed, integer-valued, strings MATLAB allows instead)
_COUNT = (1, True, ("auto",))
RULES: dict[str, tuple[float, bool, tuple[str, ...]]] = {
    "FilterSize": _COUNT,
    "NumFilters": _COUNT,
    "NumFiltersPerGroup": _COUNT,
    "Stride": _COUNT,
    "DilationFactor": _COUNT,
    "PoolSize": _COUNT,
    "NumHiddenUnits": _COUNT,
    "NumHeads": _COUNT,
    "NumKeyChannels": _COUNT,
    "NumValueChannels": _COUNT,
    "NumChannels": _COUNT,
    "NumGroups": (1, True, ("all-channels", "channel-wise")),
    "NumInputs": _COUNT,
    "NumOutputs": _COUNT,
    "NumWords": _COUNT,
    "MaxPosition": _COUNT,
    "NumAnchorBoxes": _COUNT,
    "WindowChannelSize": _COUNT,
    "InputProjectorSize": _COUNT,
    "OutputProjectorSize": _COUNT,
    "MinLength": _COUNT,
    "OutputSize": _COUNT,
    "InputSize": _COUNT,
    "PaddingSize": (0, True, ()),
    "Padding": (0, True, ("same",)),
    "OutputSizeOffset": (0, True, ()),
}
# field → (low, high) for real-valued hyper-parameters (inclusive)
RANGES: dict[str, tuple[float, float]] = {
    "Probability": (0.0, 1.0),
    "Epsilon": (0.0, math.inf),
    "Ceiling": (0.0, math.inf),
    "Alpha": (-math.inf, math.inf),
    "Beta": (-math.inf, math.inf),
    "K": (-math.inf, math.inf),
    "Scale": (-math.inf, math.inf),
}
# Fields where MATLAB itself stores NaN for "any size" (resize by one side,
# variable-length or variable-size inputs).
NAN_ALLOWED = {"OutputSize", "InputSize"}


def check_fields(record: Any) -> str | None:
    """The first impossible hyper-parameter of a layer record, in words."""
    for key, value in record.fields.items():
        if isinstance(value, dict):  # a learnable {Value, ...}, not a setting
            continue
        if key in RULES:
            problem = _check_size(key, value)
        elif key in RANGES:
            problem = _check_range(key, value)
        else:
            continue
        if problem:
            return problem
    return None


def _numbers(key: str, value: Any, allowed: tuple[str, ...]) -> np.ndarray | str | None:
    """The field as a float array, or a sentence saying why it is not one."""
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, str):
        if value in allowed or not value:
            return None
        return f"its {key} is the text {value!r}, where a number belongs"
    if not isinstance(value, np.ndarray):
        return f"its {key} is a {type(value).__name__}, where a number belongs"
    if value.size == 0:
        return None
    if value.dtype.kind not in "biuf":
        return f"its {key} holds {value.dtype} data, where a number belongs"
    return value.astype(np.float64).ravel()


def _check_size(key: str, value: Any) -> str | None:
    low, _integer, allowed = RULES[key]
    flat = _numbers(key, value, allowed)
    if flat is None or isinstance(flat, str):
        return flat
    finite = flat[np.isfinite(flat)]
    if not (np.isnan(flat) | np.isfinite(flat)).all() or (
        key not in NAN_ALLOWED and finite.size != flat.size
    ):
        return f"its {key} is {_show(flat)}, which is not a size"
    if (finite < low).any() or (finite != np.round(finite)).any():
        what = "positive whole numbers" if low >= 1 else "whole numbers ≥ 0"
        return f"its {key} is {_show(flat)}; MATLAB allows only {what}"
    if (finite > MAX_SIZE).any():
        return (
            f"its {key} is {_show(flat)}, far beyond any real network "
            f"(at most {MAX_SIZE:,} here)"
        )
    return None


def _check_range(key: str, value: Any) -> str | None:
    low, high = RANGES[key]
    flat = _numbers(key, value, ())
    if flat is None or isinstance(flat, str):
        return flat
    if not np.isfinite(flat).all():
        return f"its {key} is {_show(flat)}, not a finite number"
    if (flat < low).any() or (flat > high).any():
        bounds = f"between {low:g} and {high:g}" if high < math.inf else f"≥ {low:g}"
        return f"its {key} is {_show(flat)}; it must be {bounds}"
    return None


def _show(flat: np.ndarray) -> str:
    shown = [f"{v:g}" for v in flat[:4]] + (["..."] if flat.size > 4 else [])
    return shown[0] if len(shown) == 1 else "[" + " ".join(shown) + "]"
