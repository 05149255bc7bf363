"""What regenerating with a merge adds to a plain conversion, on a ResNet-50-sized graph.

Builds ResNet-50's topology (bottleneck blocks 3-4-6-3, 178 MATLAB layers)
as MATLAB saves it, with small channel counts (the merge sees the code, whose
shape does not depend on the channel counts), and times in one process:

- a plain conversion into an empty folder;
- a regeneration after one layer was inserted, into a folder whose model.py
  has hand edits (a comment, a method, an assertion in forward, a changed
  dropout): parse, three-way merge, weights check and writes;
- a weights-only regeneration (the code did not change);
- the merge alone (three libcst parses and the merge).

    python benchmarks/regenerate.py [--runs 5]

Medians over RUNS; the issue's target is at most 2 s added to a plain conversion.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    from resnets import resnet

    from codegen.matfile import write_mat
    from codegen.pipeline import convert
    from codegen.regenerate import _parsed, merge, regenerate

    root = Path(tempfile.mkdtemp())
    nets = {"base": root / "base" / "net.mat", "changed": root / "changed" / "net.mat"}
    nets["retrained"] = root / "retrained" / "net.mat"
    variants = {
        "base": resnet((3, 4, 6, 3), width=8, size=32),
        "changed": resnet((3, 4, 6, 3), width=8, size=32, edit=("insert", "extra")),
        "retrained": resnet((3, 4, 6, 3), width=8, size=32, seed=1),
    }
    for name, path in nets.items():
        path.parent.mkdir()
        write_mat(path, variants[name])

    def timed(fn) -> float:
        _parsed.cache_clear()  # no help from an earlier run
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    convert(nets["base"], root / "warm")  # imports, caches
    layers = len(convert(nets["base"], None).network.nodes)
    base_code = convert(nets["base"], None).code
    changed = convert(nets["changed"], None)
    new_code = changed.code
    mine = edited(base_code)
    keys = ("plain", "merge", "weights", "alone", "write", "step")
    times: dict[str, list[float]] = {k: [] for k in keys}
    for i in range(args.runs):
        out = root / f"run{i}"
        times["plain"].append(timed(lambda out=out: convert(nets["base"], out)))
        (out / "model.py").write_text(mine)
        times["merge"].append(timed(lambda out=out: convert(nets["changed"], out)))
        shutil.rmtree(out)
        convert(nets["base"], out)
        (out / "model.py").write_text(mine)
        times["weights"].append(timed(lambda out=out: convert(nets["retrained"], out)))
        times["alone"].append(timed(lambda: merge(base_code, mine, new_code)))
        # the writing step alone: into an empty folder, and with the merge
        fresh, edited_dir = root / f"fresh{i}", root / f"edited{i}"
        times["write"].append(
            timed(lambda d=fresh: regenerate(d, changed, force=False))
        )
        convert(nets["base"], edited_dir)
        (edited_dir / "model.py").write_text(mine)
        step = timed(lambda d=edited_dir: regenerate(d, changed, force=False))
        times["step"].append(step)
    m = {k: statistics.median(v) for k, v in times.items()}
    print(
        f"ResNet-50 topology: {layers} MATLAB layers, model.py {len(new_code.splitlines())} lines"
    )
    print(f"plain conversion into an empty folder: {m['plain']:.2f} s")
    print(
        f"regeneration with merge (one layer inserted, hand edits): {m['merge']:.2f} s "
        f"(+{m['merge'] - m['plain']:.2f} s)"
    )
    print(
        f"weights-only regeneration (model.py untouched): {m['weights']:.2f} s "
        f"(+{m['weights'] - m['plain']:.2f} s)"
    )
    print(f"the three-way merge alone: {m['alone']:.2f} s")
    print(
        f"writing step alone: {m['write']:.2f} s into an empty folder, {m['step']:.2f} s "
        f"with the merge and weights check (+{m['step'] - m['write']:.2f} s)"
    )
    print(f"(medians of {args.runs} runs)")
    shutil.rmtree(root)


def edited(code: str) -> str:
    code = code.replace(
        "        # MATLAB: 'fc'", "        # my head\n        # MATLAB: 'fc'"
    )
    code = code.replace("self.drop = nn.Dropout()", "self.drop = nn.Dropout(0.2)")
    code = code.replace(
        "        x = self.conv1(x)\n",
        "        assert x.dim() == 4\n        x = self.conv1(x)\n",
    )
    return code.replace(
        "    def activations(",
        "    def embed(self, x):\n        return self.avg_pool(x)\n\n    def activations(",
    )


if __name__ == "__main__":
    main()
