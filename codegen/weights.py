"""The weights file: a torch.save'd state_dict, byte-identical across runs."""

from __future__ import annotations

import io

import numpy as np


def weights_bytes(state: dict[str, np.ndarray]) -> memoryview:
    """Serialize ``state`` (sorted keys, float32 as MATLAB computes) in memory.

    Saving to a buffer, not a path, keeps the archive's inner folder name
    fixed ("archive") whatever the output file is called.
    """
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
    buffer = io.BytesIO()
    torch.save(tensors, buffer)
    return buffer.getbuffer()  # the buffer itself: getvalue() would copy it


def _c_strides(value: np.ndarray) -> tuple[int, ...]:
    """Row-major strides of ``value``'s shape, size-1 dimensions included."""
    strides, step = [], value.itemsize
    for n in reversed(value.shape):
        strides.append(step)
        step *= n
    return tuple(reversed(strides))
