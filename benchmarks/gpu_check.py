"""Every golden on CUDA (float32 and autocast) against its CPU output.

Prepared for a machine with a GPU; prints one line per golden: the largest
error relative to the CPU output's scale for float32 and for autocast
(float16/bfloat16), and the median forward time on each device.

    python benchmarks/gpu_check.py [--batch 8] [--runs 20]
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import statistics
import sys
import time
from pathlib import Path

import torch

GOLDENS = Path(__file__).resolve().parent.parent / "generated_examples"


def load(folder: Path) -> object:
    spec = importlib.util.spec_from_file_location(
        f"golden_{folder.name}", folder / "model.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def shapes(module: object) -> list[tuple[int, ...]]:
    doc = module.__doc__ or ""
    return [
        tuple(int(n) for n in m.split(", ")[1:])
        for m in re.findall(r"float32 \(([^)]*)\)", doc)
    ]


def run(
    model: torch.nn.Module, inputs: list[torch.Tensor], runs: int
) -> tuple[list[torch.Tensor], float]:
    times = []
    with torch.no_grad():
        for _ in range(runs):
            if inputs[0].is_cuda:
                torch.cuda.synchronize()
            start = time.perf_counter()
            out = model(*inputs)
            if inputs[0].is_cuda:
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
    outs = list(out) if isinstance(out, tuple) else [out]
    return [o.float().cpu() for o in outs], statistics.median(times)


def rel(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return max(
        float((x - y).abs().max() / y.abs().max().clamp_min(1e-6))
        for x, y in zip(a, b, strict=True)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device")
    print(torch.cuda.get_device_name(0), "torch", torch.__version__)
    half = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    print(f"{'golden':24} {'fp32 err':>9} {'amp err':>9} {'cpu ms':>8} {'gpu ms':>8}")
    for folder in sorted(p for p in GOLDENS.iterdir() if (p / "model.py").is_file()):
        module = load(folder)
        g = torch.Generator().manual_seed(0)
        inputs = [torch.randn(args.batch, *s, generator=g) for s in shapes(module)]
        model = module.load_model()
        ref, cpu_t = run(model, inputs, max(3, args.runs // 4))
        model = model.cuda()
        gpu_inputs = [x.cuda() for x in inputs]
        out, gpu_t = run(model, gpu_inputs, args.runs)
        with torch.autocast("cuda", dtype=half):
            amp, _ = run(model, gpu_inputs, 3)
        print(
            f"{folder.name:24} {rel(out, ref):9.2e} {rel(amp, ref):9.2e} {cpu_t * 1e3:8.2f} {gpu_t * 1e3:8.2f}"
        )


if __name__ == "__main__":
    main()
