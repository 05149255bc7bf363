"""Generated vs hand-written forward of a residual network: peak memory and time.

Builds a ResNet-style DAGNetwork (4 stages × 2 basic blocks, projection
shortcuts) as MATLAB would save it, converts it with mat2torch, and compares
the generated module with hand-written PyTorch equivalents that load the
very same weights file. Prints the figures; the issue's targets are peak
memory ≤ 1.1× and time ≤ 1.02× the hand-written model.

"handwritten" is written in torchvision's style (in-place ReLUs,
``out += identity``); "handwritten_plain" is the same without in-place
operations, for reference.

    python benchmarks/residual_forward.py [--batch 16] [--size 64] [--runs 30] [--processes 5]

Peak memory is measured in a fresh process per model (growth of the peak
resident set during one forward pass, with glibc told to return large
blocks to the OS at once). Time: in each of PROCESSES fresh processes the
models take RUNS turns each; per process, each model's median forward and
the ratio of medians; the figures are the median (and range) over processes.
Under glibc's defaults a forward's time includes page faults on heap that
was trimmed back to the OS, which vary from one process to the next, so the
times are also given with trimming switched off.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

STAGES = [(32, 1), (64, 2), (128, 2), (256, 2)]  # (channels, stride of first block)


def build_network(seed: int = 0):
    import matlab as M

    g = np.random.default_rng(seed)

    def w(*shape, scale=0.05):
        return (g.standard_normal(shape) * scale).astype(np.float32)

    def bn(name, c):
        return M.batch_norm(
            name,
            w(c),
            g.uniform(0.5, 1.5, c).astype(np.float32),
            g.uniform(0.8, 1.2, c).astype(np.float32),
            w(c),
        )

    layers = [
        M.image_input("input", (64, 64, 3)),
        M.conv2d("stem", w(3, 3, 3, 32), w(32), padding=(1, 1, 1, 1)),
        bn("stem_bn", 32),
        M.relu("stem_relu"),
    ]
    pairs = [("input", "stem"), ("stem", "stem_bn"), ("stem_bn", "stem_relu")]
    previous, c_in = "stem_relu", 32
    for s, (c_out, stride) in enumerate(STAGES, start=1):
        for b in (1, 2):
            p = f"s{s}b{b}"
            st = stride if b == 1 else 1
            layers += [
                M.conv2d(
                    f"{p}_conv1",
                    w(3, 3, c_in, c_out),
                    w(c_out),
                    stride=(st, st),
                    padding=(1, 1, 1, 1),
                ),
                bn(f"{p}_bn1", c_out),
                M.relu(f"{p}_relu1"),
                M.conv2d(
                    f"{p}_conv2", w(3, 3, c_out, c_out), w(c_out), padding=(1, 1, 1, 1)
                ),
                bn(f"{p}_bn2", c_out),
                M.addition(f"{p}_add"),
                M.relu(f"{p}_relu2"),
            ]
            pairs += [
                (previous, f"{p}_conv1"),
                (f"{p}_conv1", f"{p}_bn1"),
                (f"{p}_bn1", f"{p}_relu1"),
                (f"{p}_relu1", f"{p}_conv2"),
                (f"{p}_conv2", f"{p}_bn2"),
                (f"{p}_bn2", f"{p}_add/in1"),
                (f"{p}_add", f"{p}_relu2"),
            ]
            if st != 1 or c_in != c_out:
                layers.append(
                    M.conv2d(
                        f"{p}_skip", w(1, 1, c_in, c_out), w(c_out), stride=(st, st)
                    )
                )
                pairs += [(previous, f"{p}_skip"), (f"{p}_skip", f"{p}_add/in2")]
            else:
                pairs.append((previous, f"{p}_add/in2"))
            previous, c_in = f"{p}_relu2", c_out
    layers += [
        M.global_avg_pool2d("gap"),
        M.fully_connected("fc", w(10, 256), w(10)),
        M.softmax("softmax"),
        M.classification("out", [str(i) for i in range(10)]),
    ]
    pairs += [(previous, "gap"), ("gap", "fc"), ("fc", "softmax"), ("softmax", "out")]
    return M.dag(layers, pairs)


HANDWRITTEN = '''
import torch
from torch import nn

STAGES = {stages!r}


class HandWritten(nn.Module):
    """The same ResNet as a person would write it, in torchvision's style."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 32, 3, padding=1)
        self.stem_bn = nn.BatchNorm2d(32)
        self.blocks = []
        c_in = 32
        for s, (c_out, stride) in enumerate(STAGES, start=1):
            for b in (1, 2):
                p, st = f"s{{s}}b{{b}}", stride if b == 1 else 1
                setattr(self, f"{{p}}_conv1", nn.Conv2d(c_in, c_out, 3, st, padding=1))
                setattr(self, f"{{p}}_bn1", nn.BatchNorm2d(c_out))
                setattr(self, f"{{p}}_conv2", nn.Conv2d(c_out, c_out, 3, padding=1))
                setattr(self, f"{{p}}_bn2", nn.BatchNorm2d(c_out))
                skip = st != 1 or c_in != c_out
                if skip:
                    setattr(self, f"{{p}}_skip", nn.Conv2d(c_in, c_out, 1, st))
                self.blocks.append((p, skip))
                c_in = c_out
        self.fc = nn.Linear(256, 10)

    def forward(self, x):
        x = torch.relu_(self.stem_bn(self.stem(x)))
        for p, skip in self.blocks:
            identity = getattr(self, f"{{p}}_skip")(x) if skip else x
            out = torch.relu_(getattr(self, f"{{p}}_bn1")(getattr(self, f"{{p}}_conv1")(x)))
            out = getattr(self, f"{{p}}_bn2")(getattr(self, f"{{p}}_conv2")(out))
            out += identity
            x = torch.relu_(out)
        x = x.mean(dim=(2, 3))
        return torch.softmax(self.fc(x), dim=1)


class HandWrittenPlain(HandWritten):
    """The same without in-place operations: one more tensor per ReLU and sum."""

    def forward(self, x):
        x = torch.relu(self.stem_bn(self.stem(x)))
        for p, skip in self.blocks:
            identity = getattr(self, f"{{p}}_skip")(x) if skip else x
            out = torch.relu(getattr(self, f"{{p}}_bn1")(getattr(self, f"{{p}}_conv1")(x)))
            out = getattr(self, f"{{p}}_bn2")(getattr(self, f"{{p}}_conv2")(out))
            x = torch.relu(out + identity)
        x = x.mean(dim=(2, 3))
        return torch.softmax(self.fc(x), dim=1)
'''

MODELS = {
    "generated": None,
    "handwritten": "HandWritten",
    "handwritten_plain": "HandWrittenPlain",
}


def load(kind: str, out_dir: Path):
    import torch

    if kind == "generated":
        spec = importlib.util.spec_from_file_location("generated", out_dir / "model.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.load_model()
    namespace: dict = {}
    exec(HANDWRITTEN.format(stages=STAGES), namespace)
    model = namespace[MODELS[kind]]()
    model.load_state_dict(torch.load(out_dir / "weights.pt", weights_only=True))
    return model.eval()


def _rss_kib(field: str) -> int:
    status = Path("/proc/self/status").read_text()
    return int(re.search(rf"{field}:\s+(\d+)", status).group(1))


def measure_memory(kind: str, out_dir: Path, batch: int, size: int) -> None:
    """Child process: print how far one forward raises the resident set (bytes).

    Linux resets the peak (VmHWM) on a write of "5" to /proc/self/clear_refs,
    so the earlier peaks of importing torch and loading weights do not count.
    """
    import torch

    torch.set_num_threads(1)
    model = load(kind, out_dir)
    x = torch.randn(batch, 3, size, size)
    with torch.no_grad():
        model(x[:1])  # load kernels and caches outside the measurement
        Path("/proc/self/clear_refs").write_text("5")
        before = _rss_kib("VmRSS")
        model(x)
        peak = _rss_kib("VmHWM")
    print(json.dumps({"peak_growth_bytes": (peak - before) * 1024}))


def measure_time(out_dir: Path, batch: int, size: int, runs: int) -> None:
    """Child process: print each model's median forward time and minor page faults.

    All models run in one process, taking turns in a rotating order, so they
    share the address-space layout and the drift of the VM: between two
    processes the same model's time can differ by a tenth, within one the
    comparison is paired. Thread CPU time leaves out time the VM spent
    elsewhere but counts page-fault handling.
    """
    import resource

    import torch

    torch.set_num_threads(1)
    models = {kind: load(kind, out_dir) for kind in MODELS}
    x = torch.randn(batch, 3, size, size)
    times: dict[str, list[float]] = {kind: [] for kind in MODELS}
    faults: dict[str, list[int]] = {kind: [] for kind in MODELS}
    order = list(MODELS)
    with torch.no_grad():
        for model in [*models.values(), *models.values()]:
            model(x)
        for run in range(runs):
            for kind in order[run % 3 :] + order[: run % 3]:
                before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
                start = time.thread_time()
                models[kind](x)
                times[kind].append(time.thread_time() - start)
                after = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
                faults[kind].append(after - before)
    print(
        json.dumps(
            {
                kind: {
                    "seconds": statistics.median(times[kind]),
                    "faults": statistics.median(faults[kind]),
                }
                for kind in MODELS
            }
        )
    )


def child(args: list[str], env: dict[str, str]) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, *args],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--processes", type=int, default=5)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        if args.child[0] == "time":
            measure_time(Path(args.child[1]), args.batch, args.size, args.runs)
        else:
            measure_memory(args.child[0], Path(args.child[1]), args.batch, args.size)
        return

    import torch

    from codegen.matfile import write_mat
    from codegen.pipeline import convert

    work = Path(tempfile.mkdtemp(prefix="mat2torch-bench-"))
    write_mat(work / "resnet.mat", {"net": build_network()})
    convert(work / "resnet.mat", work / "out")
    out = str(work / "out")
    x = torch.randn(args.batch, 3, args.size, args.size)
    with torch.no_grad():
        results = [load(kind, work / "out")(x) for kind in MODELS]
    difference = max((r - results[0]).abs().max().item() for r in results)

    common = [
        "--batch",
        str(args.batch),
        "--size",
        str(args.size),
        "--runs",
        str(args.runs),
    ]
    allocators = {
        "glibc default": dict(os.environ),
        "glibc, no trimming": {
            **os.environ,
            "MALLOC_MMAP_MAX_": "0",
            "MALLOC_TRIM_THRESHOLD_": str(2**40),
        },
    }
    timing = {
        label: [
            child([*common, "--child", "time", out], env) for _ in range(args.processes)
        ]
        for label, env in allocators.items()
    }
    # Large blocks mmapped and unmapped at once: the resident set follows the live tensors.
    exact = {
        **os.environ,
        "MALLOC_MMAP_THRESHOLD_": "65536",
        "MALLOC_TRIM_THRESHOLD_": "0",
    }
    peaks = {}
    for kind in MODELS:
        samples = [
            child([*common, "--child", kind, out], exact)["peak_growth_bytes"]
            for _ in range(3)
        ]
        peaks[kind] = statistics.median(samples)

    print(
        f"residual network: 4 stages x 2 basic blocks, batch {args.batch},"
        f" {args.size}x{args.size} input, 1 thread"
    )
    print(f"max output difference between the models: {difference:.3g}")
    for label, processes in timing.items():
        print(
            f"forward time, {label} ({args.processes} processes x {args.runs} turns):"
        )
        for kind in MODELS:
            seconds = [p[kind]["seconds"] for p in processes]
            faults = [p[kind]["faults"] for p in processes]
            ratios = [p["generated"]["seconds"] / p[kind]["seconds"] for p in processes]
            print(
                f"  {kind:18s} median {statistics.median(seconds) * 1e3:6.1f} ms"
                f" (processes {min(seconds) * 1e3:.0f}-{max(seconds) * 1e3:.0f}),"
                f" minor faults per forward {min(faults):.0f}-{max(faults):.0f},"
                f" generated / this {statistics.median(ratios):.3f}"
                f" ({min(ratios):.3f}-{max(ratios):.3f})"
            )
    print("peak memory of the forward:")
    for kind, peak in peaks.items():
        print(
            f"  {kind:18s} {peak / 2**20:7.1f} MiB   generated / this {peaks['generated'] / peak:.3f}"
        )


if __name__ == "__main__":
    main()
