"""One line per conversion stage on stderr, for conversions long enough to wait on.

Silent unless the CLI switches it on (stderr is a terminal and no
``--quiet``); the pipeline calls ``stage`` after each pass, which costs a
clock read when silent.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

_state: dict[str, float | TextIO | None] = {"stream": None, "last": 0.0}


def enable(stream: TextIO | None = None) -> None:
    """Print stages on ``stream`` (stderr by default) from now on."""
    _state["stream"] = stream or sys.stderr
    _state["last"] = time.perf_counter()


def disable() -> None:
    _state["stream"] = None


def stage(name: str, detail: str = "") -> None:
    """Report that stage ``name`` finished (with its time since the last one)."""
    now = time.perf_counter()
    last = _state["last"]
    _state["last"] = now
    stream = _state["stream"]
    if stream is None or isinstance(stream, float) or not isinstance(last, float):
        return
    extra = f" ({detail})" if detail else ""
    print(f"mat2torch: {name}{extra} {now - last:.1f} s", file=stream, flush=True)


def megabytes(n: int) -> str:
    return f"{n / 1e6:.1f} MB"
