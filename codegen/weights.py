"""The weights file: a torch.save'd state_dict, byte-identical across runs."""

from __future__ import annotations

import io
from typing import IO, Any

import numpy as np


class Weights:
    """The state_dict to save, written straight into the output file.

    Holding the arrays rather than the serialized bytes keeps one copy of
    the weights in memory instead of two (the archive is streamed to disk).
    Writing to a file object, not a path, keeps the archive's inner folder
    name fixed ("archive") whatever the output file is called.
    """

    def __init__(self, state: dict[str, np.ndarray]) -> None:
        self.tensors = _tensors(state)

    def write(self, fh: IO[bytes]) -> None:
        import torch

        torch.save(self.tensors, fh)

    def __bytes__(self) -> bytes:
        buffer = io.BytesIO()
        self.write(buffer)
        return buffer.getvalue()

    @property
    def nbytes(self) -> int:
        return sum(t.nbytes for t in self.tensors.values())


def _tensors(state: dict[str, np.ndarray]) -> dict[str, Any]:
    import torch

    tensors = {}
    seen: set[int] = set()
    for key in sorted(state):
        value = np.ascontiguousarray(state[key])
        if value.dtype.kind == "f":
            value = value.astype(np.float32, copy=False)  # no copy of float32
        address = value.__array_interface__["data"][0]
        # The archive records strides and shares storages that alias: copy
        # those so the bytes depend on the values only.
        if value.strides != _c_strides(value) or address in seen:
            value = value.copy()
        seen.add(value.__array_interface__["data"][0])
        tensors[key] = torch.from_numpy(value)
    return tensors


def _c_strides(value: np.ndarray) -> tuple[int, ...]:
    """Row-major strides of ``value``'s shape, size-1 dimensions included."""
    strides, step = [], value.itemsize
    for n in reversed(value.shape):
        strides.append(step)
        step *= n
    return tuple(reversed(strides))
