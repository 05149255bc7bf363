"""Bottleneck ResNets as MATLAB saves them, with one-layer edits, for regeneration.

``resnet()`` builds a DAGNetwork of bottleneck blocks (ResNet-50's topology
with ``blocks=(3, 4, 6, 3)``: 177 layers) with small channel counts, so that
tests and benchmarks/regenerate.py get a realistic *code* shape without
ResNet-50's 100 MB of weights. Each layer's weights are drawn from a seed
derived from its name and ``seed``: editing one layer leaves the others'
weights unchanged, and changing ``seed`` changes every weight but no code.

``edit`` applies one architecture change, as a MATLAB user would make it:
``("hyper", p)`` sets the head dropout's probability, ``("insert", name)``
adds a dropout after the first block's first ReLU, ``("delete", name)``
removes a layer and joins its input to its outputs, ``("rename", old, new)``
renames a layer.
"""

from __future__ import annotations

import zlib
from typing import Any

import matlab as M
import numpy as np


def resnet(
    blocks: tuple[int, ...] = (2, 1),
    width: int = 4,
    size: int = 16,
    seed: int = 0,
    edit: tuple[Any, ...] | None = None,
) -> dict[str, Any]:
    def rng(name: str) -> np.random.Generator:
        return np.random.default_rng([seed, zlib.crc32(name.encode())])

    def conv(name: str, k: int, c_in: int, c_out: int, stride: int = 1) -> Any:
        g = rng(name)
        scale = 1.0 / np.sqrt(k * k * c_in)
        w = (g.standard_normal((k, k, c_in, c_out)) * scale).astype(np.float32)
        b = (g.standard_normal(c_out) * 0.1).astype(np.float32)
        pad = "same" if k > 1 else (0, 0, 0, 0)
        return M.conv2d(name, w, b, stride=(stride, stride), padding=pad)

    def bn(name: str, c: int) -> Any:
        g = rng(name)
        return M.batch_norm(
            name,
            (g.standard_normal(c) * 0.1).astype(np.float32),
            g.uniform(0.5, 1.5, c).astype(np.float32),
            g.uniform(0.8, 1.2, c).astype(np.float32),
            (g.standard_normal(c) * 0.1).astype(np.float32),
        )

    g = rng("input")
    layers = [
        M.image_input(
            "input",
            (size, size, 3),
            "zscore",
            Mean=g.standard_normal((1, 1, 3)).astype(np.float32),
            Std=g.uniform(0.5, 1.5, (1, 1, 3)).astype(np.float32),
        ),
        conv("conv1", 3, 3, width),
        bn("bn_conv1", width),
        M.relu("conv1_relu"),
        M.max_pool2d("pool1", (2, 2), (2, 2)),
    ]
    pairs = M.chain_pairs([layer.get("Name") for layer in layers])
    previous, c_in = "pool1", width
    for s, count in enumerate(blocks, start=2):
        mid = width * 2 ** (s - 2)
        c_out = 4 * mid
        for b in range(count):
            p = f"res{s}{chr(ord('a') + b)}"
            stride = 2 if (b == 0 and s > 2) else 1
            chain = [
                conv(f"{p}_branch2a", 1, c_in, mid, stride),
                bn(f"bn{p}_branch2a", mid),
                M.relu(f"{p}_branch2a_relu"),
                conv(f"{p}_branch2b", 3, mid, mid),
                bn(f"bn{p}_branch2b", mid),
                M.relu(f"{p}_branch2b_relu"),
                conv(f"{p}_branch2c", 1, mid, c_out),
                bn(f"bn{p}_branch2c", c_out),
            ]
            names = [layer.get("Name") for layer in chain]
            layers += [*chain, M.addition(p), M.relu(f"{p}_relu")]
            pairs += [(previous, names[0]), *M.chain_pairs(names)]
            pairs += [(names[-1], f"{p}/in1"), (p, f"{p}_relu")]
            if b == 0:
                layers += [
                    conv(f"{p}_branch1", 1, c_in, c_out, stride),
                    bn(f"bn{p}_branch1", c_out),
                ]
                pairs += [
                    (previous, f"{p}_branch1"),
                    (f"{p}_branch1", f"bn{p}_branch1"),
                    (f"bn{p}_branch1", f"{p}/in2"),
                ]
            else:
                pairs.append((previous, f"{p}/in2"))
            previous, c_in = f"{p}_relu", c_out
    g = rng("fc")
    head = [
        M.global_avg_pool2d("avg_pool"),
        M.dropout("drop", 0.5),
        M.fully_connected(
            "fc",
            (g.standard_normal((5, c_in)) / np.sqrt(c_in)).astype(np.float32),
            (g.standard_normal(5) * 0.1).astype(np.float32),
        ),
        M.softmax("fc_softmax"),
        M.classification("classoutput", ["a", "b", "c", "d", "e"]),
    ]
    layers += head
    pairs += M.chain_pairs([previous, *(layer.get("Name") for layer in head)])
    if edit is not None:
        layers, pairs = _apply(edit, layers, pairs)
    return {"net": M.dag(layers, pairs)}


def _apply(edit: tuple[Any, ...], layers: list, pairs: list) -> tuple[list, list]:
    kind = edit[0]
    if kind == "hyper":
        layers = [
            M.dropout("drop", edit[1]) if layer.get("Name") == "drop" else layer
            for layer in layers
        ]
    elif kind == "insert":
        after = "res2a_branch2a_relu"
        at = next(i for i, layer in enumerate(layers) if layer.get("Name") == after)
        layers = [*layers[: at + 1], M.dropout(edit[1], 0.25), *layers[at + 1 :]]
        pairs = [(edit[1], t) if s == after else (s, t) for s, t in pairs]
        pairs.append((after, edit[1]))
    elif kind == "delete":
        name = edit[1]
        source = next(s for s, t in pairs if t == name)
        layers = [layer for layer in layers if layer.get("Name") != name]
        pairs = [(source, t) if s == name else (s, t) for s, t in pairs if t != name]
    elif kind == "rename":
        old, new = edit[1], edit[2]
        layers = [
            _renamed(layer, new) if layer.get("Name") == old else layer
            for layer in layers
        ]

        def fix(port: str) -> str:
            head, _, tail = port.partition("/")
            return (new if head == old else head) + ("/" + tail if tail else "")

        pairs = [(fix(s), fix(t)) for s, t in pairs]
    else:
        raise ValueError(kind)
    return layers, pairs


def _renamed(layer: Any, name: str) -> Any:
    return type(layer)(layer.classname, {**layer.fields, "Name": name}, True)
