"""The weights file: a torch.save'd state_dict, byte-identical across runs."""

from __future__ import annotations

import io

import numpy as np


def weights_bytes(state: dict[str, np.ndarray]) -> bytes:
    """Serialize ``state`` (sorted keys, float32 as MATLAB computes) in memory.

    Saving to a buffer, not a path, keeps the archive's inner folder name
    fixed ("archive") whatever the output file is called.
    """
    import torch

    tensors = {}
    for key in sorted(state):
        value = np.asarray(state[key])
        if value.dtype.kind == "f":
            value = value.astype(np.float32)
        tensors[key] = torch.from_numpy(np.ascontiguousarray(value))
    buffer = io.BytesIO()
    torch.save(tensors, buffer)
    return buffer.getvalue()
