"""The conversion's self-check, at a cost that does not grow with the weights.

The generated class is built on the meta device (no memory, no random
initialization), the weights are loaded strictly with ``assign=True`` (the
model shares the arrays the weights file is written from: no copy), and one
real forward pass on zeros proves the module runs. Big image networks run
at the smallest of 1/8, 1/4 or 1/2 of the declared height and width that
they accept (global pooling makes most accept it); the declared size's own
shape arithmetic is proven by the planner already. A network that accepts
only its declared size (flatten before a fully connected layer) runs at it,
directly when the IR says so.
Meta-device forward passes were measured and rejected: the first one
imports torch._dynamo for batch normalization's decomposition (2-3 s).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

# Below this many activation values per observation the forward pass at the
# declared size is cheap (milliseconds).
REAL_RUN_BUDGET = 2_000_000
# Above this the real pass is skipped even as a fallback (a 3000×3000 U-Net
# needs gigabytes).
CHECK_BUDGET = 100_000_000


def build_meta(cls: Callable[[], Any]) -> Any:
    """An instance of ``cls`` whose tensors are shapes only."""
    import torch

    with torch.device("meta"):
        return cls()


def load_strict(cls: Callable[[], Any], state: dict[str, Any]) -> Any:
    """``cls()`` holding ``state`` (arrays or tensors; strict), sharing its
    memory, in eval mode."""
    import torch

    model = build_meta(cls)
    tensors = {
        k: (
            v
            if isinstance(v, torch.Tensor)
            else torch.from_numpy(np.ascontiguousarray(v))
        )
        for k, v in state.items()
    }
    model.load_state_dict(tensors, strict=True, assign=True)
    left = [name for name, t in _tensors(model) if t.is_meta]
    if left:  # a tensor outside the state_dict: build for real
        torch.manual_seed(0)
        model = cls()
        model.load_state_dict(tensors, strict=True)
    return model.eval()


def _tensors(model: Any) -> list[tuple[str, Any]]:
    import torch

    found = list(model.named_parameters()) + list(model.named_buffers())
    for prefix, module in model.named_modules():
        found += [
            (f"{prefix}.{k}", v)
            for k, v in vars(module).items()
            if isinstance(v, torch.Tensor)
        ]
    return found


def prove_runs(
    model: Any,
    inputs: Sequence[tuple[tuple[int, ...], int]],
    activation_size: int,
    *,
    reducible: bool = True,
) -> str:
    """One forward pass on zeros; ``inputs`` are (shape, spatial dimensions).

    ``reducible=False``: a layer fits the declared size only (VGG's fc6), so
    the smaller trials, each a failed pass through every convolution, are
    skipped. Returns the input scale that ran ("1/8", ..., "1") or "skipped".
    """
    import torch

    big = activation_size > REAL_RUN_BUDGET
    for factor in (8, 4, 2) if big and reducible else ():
        shapes = [_reduced(shape, spatial, factor) for shape, spatial in inputs]
        if any(s is None for s in shapes):
            break
        try:
            with torch.no_grad():
                model(*[torch.zeros(s) for s in shapes if s is not None])
            return f"1/{factor}"
        except Exception:  # too small for this network: try a larger size
            continue
    if activation_size > CHECK_BUDGET:
        return "skipped"
    with torch.no_grad():
        model(*[torch.zeros(shape) for shape, _ in inputs])
    return "1"


def _reduced(
    shape: tuple[int, ...], spatial: int, factor: int
) -> tuple[int, ...] | None:
    """``shape`` with its trailing ``spatial`` sizes divided by ``factor``."""
    if spatial == 0:
        return None
    head, tail = shape[: len(shape) - spatial], shape[len(shape) - spatial :]
    if min(tail) // factor < 1:
        return None
    return (*head, *(n // factor for n in tail))
