"""ResNet-50 inference: generated model.py against hand-written and ONNX routes.

The synthetic ResNet-50 of benchmarks/big_networks.py is converted once;
then, in each of PROCESSES fresh processes (1 thread, batch 4, 224×224),
every model takes RUNS turns after a warm-up and its median forward time is
taken; printed are the medians over processes and the ratios the issue sets
targets for (fused generated ≤ 1.0 × onnx2torch, unfused generated ≤ 1.02 ×
hand-written).

Models, all holding the very same weights:
  generated          load_model()
  generated_fused    load_model(fuse=True)
  handwritten        torchvision-style Bottleneck ResNet-50 (in-place ReLU, out += identity)
  handwritten_fused  the same with each BatchNorm folded (torch.nn.utils.fusion)
  onnx2torch         torch.onnx.export(generated) → onnx2torch.convert (export folds BN)

    python benchmarks/inference_speed.py [--processes 3] [--runs 5] [--batch 4]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from big_networks import OUT, RESNET_STAGES, ensure  # noqa: E402

CONVERTED = OUT / "resnet50_model"
MODELS = [
    "generated",
    "generated_fused",
    "handwritten",
    "handwritten_fused",
    "onnx2torch",
]


def handwritten(fuse: bool):
    """ResNet-50 as torchvision writes it, attribute names as MATLAB's."""
    import torch
    from torch import nn
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    class Bottleneck(nn.Module):
        def __init__(self, c_in: int, width: int, c_out: int, stride: int, down: bool):
            super().__init__()
            self.conv1 = nn.Conv2d(c_in, width, 1, stride)
            self.bn1 = nn.BatchNorm2d(width)
            self.conv2 = nn.Conv2d(width, width, 3, padding=1)
            self.bn2 = nn.BatchNorm2d(width)
            self.conv3 = nn.Conv2d(width, c_out, 1)
            self.bn3 = nn.BatchNorm2d(c_out)
            self.relu = nn.ReLU(inplace=True)
            self.downsample = (
                nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride), nn.BatchNorm2d(c_out))
                if down
                else None
            )

        def forward(self, x):
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.relu(self.bn2(self.conv2(out)))
            out = self.bn3(self.conv3(out))
            out += identity
            return self.relu(out)

        def fuse(self):
            for c, b in (("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3")):
                setattr(self, c, fuse_conv_bn_eval(getattr(self, c), getattr(self, b)))
                setattr(self, b, nn.Identity())
            if self.downsample is not None:
                conv, bn = self.downsample
                self.downsample = nn.Sequential(fuse_conv_bn_eval(conv, bn))

    class ResNet50(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 7, 2, padding=3)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(3, 2, padding=1)
            blocks, c_in = [], 64
            for _stage, n, width, c_out, stride in RESNET_STAGES:
                for b in range(n):
                    blocks.append(
                        Bottleneck(c_in, width, c_out, stride if b == 0 else 1, b == 0)
                    )
                    c_in = c_out
            self.blocks = nn.Sequential(*blocks)
            self.fc = nn.Linear(2048, 1000)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.blocks(x)
            x = torch.flatten(torch.nn.functional.adaptive_avg_pool2d(x, 1), 1)
            return torch.softmax(self.fc(x), dim=1)

    model = ResNet50()
    state = torch.load(CONVERTED / "weights.pt", weights_only=True)
    mine = {"conv1": "conv1", "bn1": "bn_conv1", "fc": "fc1000"}
    i = 0
    for stage, n, *_ in RESNET_STAGES:
        for b in range(n):
            p = f"{stage}{chr(ord('a') + b)}"
            for k, s in enumerate("abc", start=1):
                mine[f"blocks.{i}.conv{k}"] = f"res{p}_branch2{s}"
                mine[f"blocks.{i}.bn{k}"] = f"bn{p}_branch2{s}"
            if b == 0:
                mine[f"blocks.{i}.downsample.0"] = f"res{p}_branch1"
                mine[f"blocks.{i}.downsample.1"] = f"bn{p}_branch1"
            i += 1
    renamed = {}
    for key in model.state_dict():
        prefix, leaf = key.rsplit(".", 1)
        renamed[key] = state[f"{mine[prefix]}.{leaf}"]
    model.load_state_dict(renamed, strict=True)
    model.eval()
    if fuse:
        model.conv1 = fuse_conv_bn_eval(model.conv1, model.bn1)
        model.bn1 = nn.Identity()
        for block in model.blocks:
            block.fuse()
    return model


def load(kind: str):
    import torch

    spec = importlib.util.spec_from_file_location("generated", CONVERTED / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if kind == "generated":
        return module.load_model()
    if kind == "generated_fused":
        return module.load_model(fuse=True)
    if kind.startswith("handwritten"):
        return handwritten(fuse=kind.endswith("fused"))
    import onnx

    _stub_torchvision()
    from onnx2torch import convert

    path = OUT / "resnet50.onnx"
    if not path.exists():
        x = torch.zeros(1, 3, 224, 224)
        torch.onnx.export(
            module.load_model(),
            (x,),
            str(path),
            dynamo=False,
            input_names=["x"],
            dynamic_axes={"x": {0: "n"}},
        )
    return convert(onnx.load(str(path))).eval()


def _stub_torchvision() -> None:
    """onnx2torch imports torchvision for its NMS and RoiAlign converters only.

    The project does not install torchvision (pip would replace the CPU
    torch with another build); ResNet-50 needs neither converter.
    """
    import types

    if importlib.util.find_spec("torchvision") is None:
        ops = types.ModuleType("torchvision.ops")
        ops.roi_align = None
        vision = types.ModuleType("torchvision")
        vision.ops = ops
        sys.modules["torchvision"] = vision
        sys.modules["torchvision.ops"] = ops


def child(batch: int, runs: int) -> None:
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    x = torch.rand(batch, 3, 224, 224)
    models = {k: load(k) for k in MODELS}
    with torch.no_grad():
        for m in models.values():
            m(x)  # warm-up
        times: dict[str, list[float]] = {k: [] for k in MODELS}
        for _ in range(runs):
            for k, m in models.items():
                start = time.perf_counter()
                m(x)
                times[k].append(time.perf_counter() - start)
    medians = {k: statistics.median(v) for k, v in times.items()}
    print("RESULT", json.dumps(medians))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.batch, args.runs)
        return
    files = ensure("resnet50")
    if not (CONVERTED / "model.py").exists():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "codegen",
                "convert",
                str(files["v7"]),
                "-o",
                str(CONVERTED),
                "-q",
            ],
            check=True,
        )
    results = []
    for _ in range(args.processes):
        proc = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                "--batch",
                str(args.batch),
                "--runs",
                str(args.runs),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
        results.append(json.loads(line.removeprefix("RESULT ")))
    med = {k: statistics.median(r[k] for r in results) for k in MODELS}
    print(
        f"ResNet-50, batch {args.batch}, 224×224, 1 thread, {args.processes} processes × {args.runs} runs"
    )
    for k in MODELS:
        print(f"  {k:18} {med[k] * 1e3:8.1f} ms")
    print(
        f"generated_fused / onnx2torch   = {med['generated_fused'] / med['onnx2torch']:.3f} (target ≤ 1.0)"
    )
    print(
        f"generated / handwritten        = {med['generated'] / med['handwritten']:.3f} (target ≤ 1.02)"
    )
    print(
        f"generated_fused / handwritten_fused = {med['generated_fused'] / med['handwritten_fused']:.3f}"
    )


if __name__ == "__main__":
    main()
