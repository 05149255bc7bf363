"""Synthetic ResNet-50- and VGG-16-sized MATLAB networks, written once.

The layer names are the ones MATLAB's ``resnet50`` and ``vgg16`` use
(``res2a_branch2a``, ``bn2a_branch2a``, ``conv1_1``, ``fc6``, ...); the
weights are random (seeded), float32 as MATLAB stores them. Files are
written by the project's own MAT writer, as v7 and v7.3:

    python benchmarks/big_networks.py [--out /tmp/m2t_bench] [--only resnet50]

Writing takes a while (VGG-16 is ~550 MB); the other benchmarks reuse files
that exist already.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent))

OUT = Path("/tmp/m2t_bench")
# ResNet-50: (stage, blocks, bottleneck width, output channels, first stride)
RESNET_STAGES = [
    (2, 3, 64, 256, 1),
    (3, 4, 128, 512, 2),
    (4, 6, 256, 1024, 2),
    (5, 3, 512, 2048, 2),
]
VGG_BLOCKS = [(1, 2, 64), (2, 2, 128), (3, 3, 256), (4, 3, 512), (5, 3, 512)]


class _Weights:
    def __init__(self, seed: int) -> None:
        self.g = np.random.default_rng(seed)

    def __call__(self, *shape: int) -> np.ndarray:
        fan_in = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
        scale = np.float32(np.sqrt(2.0 / max(fan_in, 1)))
        return self.g.standard_normal(shape, dtype=np.float32) * scale

    def bn(self, name: str, c: int) -> Any:
        import matlab as M

        g = self.g
        return M.batch_norm(
            name,
            (g.standard_normal(c, dtype=np.float32) * 0.1),
            g.uniform(0.5, 1.5, c).astype(np.float32),
            g.uniform(0.8, 1.2, c).astype(np.float32),
            (g.standard_normal(c, dtype=np.float32) * 0.1),
        )


def resnet50(seed: int = 0) -> Any:
    """ResNet-50 as MATLAB's ``resnet50`` names it: 177 layers, 25.6 M parameters."""
    import matlab as M

    w = _Weights(seed)
    layers = [
        M.image_input("input_1", (224, 224, 3)),
        M.conv2d("conv1", w(7, 7, 3, 64), w(64), stride=(2, 2), padding=(3, 3, 3, 3)),
        w.bn("bn_conv1", 64),
        M.relu("activation_1_relu"),
        M.max_pool2d("max_pooling2d_1", (3, 3), (2, 2), padding=(1, 1, 1, 1)),
    ]
    names = [x.fields["Name"] for x in layers]
    pairs = M.chain_pairs(names)
    previous, c_in = "max_pooling2d_1", 64
    for stage, blocks, width, c_out, stride in RESNET_STAGES:
        for b in range(blocks):
            p = f"{stage}{chr(ord('a') + b)}"
            st = stride if b == 0 else 1
            chain = [
                M.conv2d(
                    f"res{p}_branch2a", w(1, 1, c_in, width), w(width), stride=(st, st)
                ),
                w.bn(f"bn{p}_branch2a", width),
                M.relu(f"res{p}_branch2a_relu"),
                M.conv2d(
                    f"res{p}_branch2b",
                    w(3, 3, width, width),
                    w(width),
                    padding=(1, 1, 1, 1),
                ),
                w.bn(f"bn{p}_branch2b", width),
                M.relu(f"res{p}_branch2b_relu"),
                M.conv2d(f"res{p}_branch2c", w(1, 1, width, c_out), w(c_out)),
                w.bn(f"bn{p}_branch2c", c_out),
            ]
            layers += chain
            names = [x.fields["Name"] for x in chain]
            pairs += [(previous, names[0]), *M.chain_pairs(names)]
            pairs.append((names[-1], f"res{p}/in1"))
            if b == 0:
                layers += [
                    M.conv2d(
                        f"res{p}_branch1",
                        w(1, 1, c_in, c_out),
                        w(c_out),
                        stride=(st, st),
                    ),
                    w.bn(f"bn{p}_branch1", c_out),
                ]
                pairs += [
                    (previous, f"res{p}_branch1"),
                    (f"res{p}_branch1", f"bn{p}_branch1"),
                    (f"bn{p}_branch1", f"res{p}/in2"),
                ]
            else:
                pairs.append((previous, f"res{p}/in2"))
            layers += [M.addition(f"res{p}"), M.relu(f"res{p}_relu")]
            pairs.append((f"res{p}", f"res{p}_relu"))
            previous, c_in = f"res{p}_relu", c_out
    tail = [
        M.global_avg_pool2d("avg_pool"),
        M.fully_connected("fc1000", w(1000, 2048), w(1000)),
        M.softmax("fc1000_softmax"),
        M.classification(
            "ClassificationLayer_fc1000", [f"class{i}" for i in range(1000)]
        ),
    ]
    layers += tail
    names = [x.fields["Name"] for x in tail]
    pairs += [(previous, names[0]), *M.chain_pairs(names)]
    return M.dag(layers, pairs)


def vgg16(seed: int = 0) -> Any:
    """VGG-16 as MATLAB's ``vgg16`` names it: 41 layers, 138 M parameters."""
    import matlab as M

    w = _Weights(seed)
    layers = [M.image_input("input", (224, 224, 3))]
    c_in = 3
    for block, convs, c in VGG_BLOCKS:
        for i in range(1, convs + 1):
            layers += [
                M.conv2d(
                    f"conv{block}_{i}", w(3, 3, c_in, c), w(c), padding=(1, 1, 1, 1)
                ),
                M.relu(f"relu{block}_{i}"),
            ]
            c_in = c
        layers.append(M.max_pool2d(f"pool{block}", (2, 2), (2, 2)))
    for i, (n_in, n_out) in zip(
        (6, 7), ((7 * 7 * 512, 4096), (4096, 4096)), strict=True
    ):
        layers += [
            M.fully_connected(f"fc{i}", w(n_out, n_in), w(n_out)),
            M.relu(f"relu{i}"),
            M.dropout(f"drop{i}"),
        ]
    layers += [
        M.fully_connected("fc8", w(1000, 4096), w(1000)),
        M.softmax("prob"),
        M.classification("output", [f"class{i}" for i in range(1000)]),
    ]
    return M.series(layers)


NETWORKS = {"resnet50": resnet50, "vgg16": vgg16}


def paths(name: str, out: Path = OUT) -> dict[str, Path]:
    return {v: out / f"{name}_{v.replace('.', '')}.mat" for v in ("v7", "v7.3")}


def ensure(name: str, out: Path = OUT) -> dict[str, Path]:
    """The network's v7 and v7.3 files, written if missing."""
    from codegen.matfile import write_mat

    out.mkdir(parents=True, exist_ok=True)
    files = paths(name, out)
    if all(p.exists() for p in files.values()):
        return files
    net = NETWORKS[name]()
    for version, path in files.items():
        if not path.exists():
            tmp = path.with_suffix(".part")
            write_mat(tmp, {"net": net}, version=version)
            tmp.replace(path)
            print(f"wrote {path} ({path.stat().st_size / 1e6:.0f} MB)", flush=True)
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--only", choices=sorted(NETWORKS))
    args = parser.parse_args()
    for name in [args.only] if args.only else sorted(NETWORKS):
        ensure(name, args.out)


if __name__ == "__main__":
    main()
