"""Conversion time and memory on ResNet-50- and VGG-16-sized networks.

For each network and MAT version, in fresh processes (median of RUNS):
the bare read (mat-io for v7; h5py reading every dataset for v7.3),
``import torch``, ``mat2torch convert`` wall time, the ratio
convert / (read + import torch) (target ≤ 1.5) and the convert's peak RSS
over the weight bytes (target ≤ 2.5).

    python benchmarks/convert_speed.py [--runs 3] [--only resnet50] [--version v7]

The .mat files are written once by benchmarks/big_networks.py into
/tmp/m2t_bench.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from big_networks import NETWORKS, ensure  # noqa: E402

READ_V7 = "import sys; from matio import load_from_mat; load_from_mat(sys.argv[1])"
READ_V73 = """
import sys, h5py
def walk(g):
    for v in g.values():
        walk(v) if isinstance(v, h5py.Group) else v[()]
with h5py.File(sys.argv[1], "r") as f:
    walk(f)
"""
IMPORT_TORCH = "import torch"


def peak_of(argv: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of one fresh child (/usr/bin/time)."""
    with tempfile.NamedTemporaryFile("r") as out:
        start = time.perf_counter()
        proc = subprocess.run(
            ["/usr/bin/time", "-f", "%M", "-o", out.name, *argv],
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - start
        if proc.returncode:
            raise SystemExit(f"{argv} failed:\n{proc.stderr}")
        return wall, int(out.read().split()[-1]) * 1024


def weight_bytes(name: str) -> int:
    """Bytes of the network's learnables as float32 (from the writer)."""
    import numpy as np

    net = NETWORKS[name]()
    total = 0

    def walk(v: object) -> None:
        nonlocal total
        if isinstance(v, np.ndarray) and v.dtype == np.float32:
            total += v.nbytes
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)
        elif hasattr(v, "fields"):
            walk(dict(v.fields))

    walk(net)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", choices=sorted(NETWORKS))
    parser.add_argument("--version", choices=("v7", "v7.3"))
    args = parser.parse_args()
    py = sys.executable
    mat2torch = [py, "-m", "codegen"]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, runs={args.runs}")
    print(
        f"{'network':9} {'ver':5} {'MB':>5} {'read':>6} {'torch':>6} "
        f"{'convert':>8} {'ratio':>6} {'RSS MB':>7} {'RSS/w':>6}"
    )
    for name in [args.only] if args.only else sorted(NETWORKS):
        files = ensure(name)
        weights = weight_bytes(name)
        for version, path in files.items():
            if args.version and version != args.version:
                continue
            read_code = READ_V7 if version == "v7" else READ_V73
            reads, torches, converts, peaks = [], [], [], []
            for _ in range(args.runs):
                reads.append(peak_of([py, "-c", read_code, str(path)])[0])
                torches.append(peak_of([py, "-c", IMPORT_TORCH])[0])
                out = Path(tempfile.mkdtemp(prefix="m2t_out_"))
                try:
                    wall, peak = peak_of(
                        [*mat2torch, "convert", str(path), "-o", str(out), "--force"]
                    )
                finally:
                    shutil.rmtree(out)
                converts.append(wall)
                peaks.append(peak)
            read, torch_s = statistics.median(reads), statistics.median(torches)
            conv, peak = statistics.median(converts), statistics.median(peaks)
            print(
                f"{name:9} {version:5} {path.stat().st_size / 1e6:5.0f} {read:6.2f} "
                f"{torch_s:6.2f} {conv:8.2f} {conv / (read + torch_s):6.2f} "
                f"{peak / 1e6:7.0f} {peak / weights:6.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
