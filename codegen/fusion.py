"""Which BatchNorm layers ``load_model(fuse=True)`` folds, decided from the IR.

A batch normalization folds into the convolution or fully connected layer
before it when it reads that layer's only output and nothing else reads it:
then BN(conv(x)) is one convolution with scaled weights and shifted bias
(PyTorch's torch.nn.utils.fusion does the arithmetic). ONNX export does the
same fold, which is why the ONNX route used to run faster than model.py.
"""

from __future__ import annotations

from collections import Counter

from codegen.ir import ModuleNode, Network, Port

FOLDABLE = {
    "nn.Conv1d": "conv",
    "nn.Conv2d": "conv",
    "nn.Conv3d": "conv",
    "nn.Linear": "linear",
}
BATCH_NORMS = {"nn.BatchNorm1d", "nn.BatchNorm2d", "nn.BatchNorm3d"}
IMPORTS = {
    "conv": "from torch.nn.utils.fusion import fuse_conv_bn_eval",
    "linear": "from torch.nn.utils.fusion import fuse_linear_bn_eval",
}


def batchnorm_folds(net: Network) -> list[tuple[str, str, str]]:
    """(kind, layer attribute, batch norm attribute) for every foldable pair."""
    readers = Counter(p for n in net.nodes for p in n.inputs)
    readers.update(o.port for o in net.outputs)
    nodes = {n.name: n for n in net.nodes}
    folds: list[tuple[str, str, str]] = []
    for bn in net.nodes:
        if not isinstance(bn, ModuleNode) or bn.module.func not in BATCH_NORMS:
            continue
        src = nodes.get(bn.inputs[0].layer) if len(bn.inputs) == 1 else None
        if (
            isinstance(src, ModuleNode)
            and src.module.func in FOLDABLE
            and readers[Port(layer=src.name)] == 1
            and len(src.out_types) == 1
        ):
            folds.append((FOLDABLE[src.module.func], src.ident, bn.ident))
    return folds


def fold_imports(net: Network) -> list[str]:
    """The generated file's imports for the folds."""
    return sorted({IMPORTS[kind] for kind, _, _ in batchnorm_folds(net)})
