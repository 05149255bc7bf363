"""Converting a v7.3 MatConvNet file vs reading it with h5py and importing torch.

The issue's target: `mat2torch convert` of a v7.3 MatConvNet network takes at
most 1.5× the time a fresh process needs to read every dataset of the file
with h5py and import torch (the floor any converter pays). Both are timed as
whole fresh processes (interpreter start included for both), alternating,
ROUNDS times; the figures are the medians and the ratio of medians.

    python benchmarks/matconvnet_v73.py [FILE.mat] [--rounds 5]

Default FILE: the DnCNN DagNN checkpoint in ../shared/fixtures/real.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT = (
    REPO.parent
    / "shared/fixtures/real"
    / "cszn__DnCNN__TrainingCodes__DnCNN_TrainingCodes_DagNN_v1.1__utilities__DnCNN-epoch-50.mat"
)

FLOOR = """
import sys, h5py
with h5py.File(sys.argv[1], "r") as fh:
    fh.visititems(lambda name, obj: obj[()] if isinstance(obj, h5py.Dataset) else None)
import torch
"""


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("file", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    floor, conv = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.rounds):
            floor.append(timed([sys.executable, "-c", FLOOR, str(args.file)]))
            out = Path(tmp) / f"out{i}"
            conv.append(
                timed(
                    [
                        sys.executable,
                        "-m",
                        "codegen",
                        "convert",
                        str(args.file),
                        "-o",
                        str(out),
                    ]
                )
            )
    f, c = statistics.median(floor), statistics.median(conv)
    print(f"file: {args.file.name} ({args.file.stat().st_size / 1e6:.1f} MB)")
    print(
        f"h5py read all + import torch: median {f:.2f} s (range {min(floor):.2f}-{max(floor):.2f})"
    )
    print(
        f"mat2torch convert:            median {c:.2f} s (range {min(conv):.2f}-{max(conv):.2f})"
    )
    print(f"ratio: {c / f:.2f} (target <= 1.5)")


if __name__ == "__main__":
    main()
