"""What reading untrusted files safely costs (codegen.untrusted).

For each file: the decompressed size the structural scan finds, the time of
the scan, of mat-io reading in-process (unprotected) and of the protected
read (scan + forked child + pickled records back), and the reader's peak
address space beyond its start, as a multiple of the decompressed size (the
child's memory limit is MEMORY_FIXED + MEMORY_FACTOR × decompressed).

Usage: python benchmarks/untrusted_read.py [--real | FILE ...]
(default: a 2.7 MB v7 and a 1.6 MB v7.3 real file, a synthetic 10^5-layer
chain and a synthetic network with 500 MB of weights; --real adds every file
of ../shared/fixtures/real).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from codegen import matfile, untrusted  # noqa: E402
from codegen.diagnostics import ConversionError  # noqa: E402
from codegen.pipeline import is_network_variable  # noqa: E402

_PEAK = """
import sys
from pathlib import Path
from codegen import matfile
matfile._import_reader()
def vm(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
start = vm("VmSize:")
matfile._load(Path(sys.argv[1]), sys.argv[2:])
print(vm("VmPeak:") - start)
"""


def _peak(path: Path, names: list[str]) -> int:
    """Address space mat-io adds while decoding, in a fresh interpreter."""
    proc = subprocess.run(
        [sys.executable, "-c", _PEAK, str(path), *names],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    return int(proc.stdout.strip() or -1)


def _best(fn, repeat: int = 3) -> float:
    """Fastest of a few runs: the machine is shared, noise only adds time."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def measure(path: Path) -> str:
    matfile._import_reader()  # both paths import mat-io once per process
    try:
        layout = untrusted.scan(path)
    except ConversionError as exc:
        return f"{path.name[:60]:60s} refused by the scan: {exc.message[:60]}"
    try:
        names = [v.name for v in matfile.list_variables(path) if is_network_variable(v)]
    except ConversionError as exc:
        return f"{path.name[:60]:60s} refused: {exc.message[:60]}"
    repeat = 1 if layout.decompressed > 50e6 else 3

    def scan() -> None:
        untrusted._scan.cache_clear()
        untrusted.scan(path)

    def raw() -> None:
        matfile._whos(str(path))
        matfile._load(path, names)

    def protected() -> None:  # as convert reads: list, then load (scan cached)
        untrusted._scan.cache_clear()
        matfile.list_variables(path)
        matfile.load_variables(path, names)

    t_scan, t_raw, t_safe = (_best(f, repeat) for f in (scan, raw, protected))
    peak = _peak(path, names)
    ratio = peak / max(layout.decompressed, 1)
    return (
        f"{path.name[:60]:60s} {layout.version:5s} {path.stat().st_size / 1e6:8.2f} MB "
        f"{layout.decompressed / 1e6:8.2f} MB  scan {t_scan * 1e3:7.1f} ms  "
        f"raw {t_raw:6.2f} s  protected {t_safe:6.2f} s "
        f"({t_safe - t_raw:+.2f} s)  peak {peak / 1e6:8.1f} MB = "
        f"{ratio:5.1f}× decompressed"
    )


def synthetic(tmp: Path) -> list[Path]:
    import matlab as M

    from codegen.matfile import write_mat

    chain = tmp / "synthetic_chain_1e5.mat"
    write_mat(
        chain,
        {"net": [M.feature_input("in", 3)] + [M.relu(f"r{i}") for i in range(100_000)]},
    )
    g = np.random.default_rng(0)
    big = tmp / "synthetic_fc_100MB.mat"
    layers = [M.feature_input("in", 5000)]
    for i in range(5):
        w = g.standard_normal((5000, 5000)).astype(np.float32)
        layers.append(M.fully_connected(f"fc{i}", w, np.zeros(5000)))
    write_mat(big, {"net": M.series(layers)})
    return [chain, big]


def main() -> None:
    print(
        f"memory limit = {untrusted.MEMORY_FIXED >> 20} MiB + "
        f"{untrusted.MEMORY_FACTOR} × decompressed size"
    )
    with tempfile.TemporaryDirectory() as tmp:
        if len(sys.argv) > 1 and sys.argv[1] != "--real":
            files = [Path(a) for a in sys.argv[1:]]
        else:
            real = REPO.parent / "shared" / "fixtures" / "real"
            files = sorted(real.glob("*.mat")) if "--real" in sys.argv else []
            files = [
                real / "ivvasel__proyectoSCBIO__Matlab__Entrenamiento__PrimeraRed.mat",
                real / "SS-Electronics__ECG_DL__ecg_cnn_trained.mat",  # v7.3
                *files,
                *synthetic(Path(tmp)),
            ]
        for path in files:
            print(measure(path), flush=True)


if __name__ == "__main__":
    main()
