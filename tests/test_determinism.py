"""Same input, same bytes: under different hash seeds, in different folders."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import FIXTURES
from test_matfile import small_net

from codegen.matfile import write_mat


def convert_with_seed(mat: Path, out: Path, seed: str) -> dict[str, bytes]:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    var = ["--var", "lgraph"] if "lgraph" in mat.name else []
    proc = subprocess.run(
        [sys.executable, "-m", "codegen", "convert", str(mat), "-o", str(out), *var],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


def sources(tmp_path: Path) -> list[Path]:
    mat = tmp_path / "small.mat"
    write_mat(mat, {"net": small_net()})
    real = [
        FIXTURES / "real" / "brkgyln__VehicleDetection__cnn.mat",
        # an untrained LayerGraph: its seeded default initialization must be stable too
        FIXTURES / "real" / "korniarp__ML_DQN__lgraph.mat",
        # a sequence network
        FIXTURES
        / "real"
        / "matlab-deep-learning__Fault-Detection-Using-Deep-Learning-Classification__SavedData__TrainedModel@e4d7e6f.mat",
    ]
    return [mat, *(p for p in real if p.is_file())]


def test_byte_identical_across_hash_seeds(tmp_path: Path) -> None:
    for mat in sources(tmp_path):
        first = convert_with_seed(mat, tmp_path / f"{mat.stem}-a", "1")
        second = convert_with_seed(mat, tmp_path / f"{mat.stem}-b" / "deeper", "4242")
        assert first.keys() == {"model.py", "weights.pt", "mat2torch-base.json"}
        assert first == second, mat.name


def test_no_paths_hosts_or_dates(tmp_path: Path) -> None:
    import socket
    import time

    files = convert_with_seed(sources(tmp_path)[0], tmp_path / "out", "0")
    for data in files.values():
        assert str(tmp_path).encode() not in data
    code = files["model.py"].decode()
    assert socket.gethostname() not in code
    assert time.strftime("%Y") not in code
