"""Refuse networks whose untrained layers would need absurd memory.

A layer saved without weights (an untrained LayerGraph) gets PyTorch's
default initialization, sized by its hyper-parameters alone. A damaged file
can make those sizes multiply into terabytes; building the module on the
``meta`` device counts the values without allocating them.
"""

from __future__ import annotations

import types
from typing import Any

import numpy as np

from codegen.diagnostics import ConversionError
from codegen.ir import Network

# 2^28 float32 values = 1 GiB: more than VGG-16's 138 M parameters, the
# largest network one would plausibly save untrained.
MAX_UNTRAINED = 1 << 28


def check_untrained_size(net: Network, code: str, state: dict[str, np.ndarray]) -> None:
    """Raise if the values the .mat file does not hold exceed MAX_UNTRAINED."""
    import torch

    module = types.ModuleType("mat2torch_budget")
    module.__file__ = "model.py"
    exec(compile(code, "model.py", "exec"), module.__dict__)
    with torch.device("meta"):
        model: Any = getattr(module, net.class_name)()
    sizes: dict[str, int] = {}
    for key, value in model.state_dict().items():
        if key not in state:
            layer = key.split(".")[0]
            sizes[layer] = sizes.get(layer, 0) + value.numel()
    total = sum(sizes.values())
    if total > MAX_UNTRAINED:
        worst = max(sizes, key=sizes.__getitem__)
        raise ConversionError(
            f"{net.source}: variable '{net.variable}': its layers without saved "
            f"weights would need {total:,} values ({worst!r} alone "
            f"{sizes[worst]:,}), more than {MAX_UNTRAINED:,}; their sizes in the "
            "file are damaged or absurd.",
            hint="Nothing was written. Save the trained network in MATLAB and "
            "convert that.",
        )
