"""How much of each generated model.py is the network, and how clean it is.

Prints, for every golden in generated_examples/ and every network in
../shared/fixtures/real that converts: its layer count, the share of
non-blank lines (literal data such as class names and factor tables left
out) that are ``__init__`` + ``forward`` of the network class and the layer
classes it instantiates (loss classes do not count), and the findings of ``ruff check --select ALL``
(with the fixed ignore list in tests/lint_generated.py) and ``mypy --strict``.

    python benchmarks/readability.py
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from lint_generated import (  # noqa: E402
    mypy_findings,
    network_share,
    real_conversions,
    ruff_findings,
)


def conversions() -> Iterator[tuple[str, Any]]:
    """The goldens' networks (from examples/), then every real network."""
    from codegen.pipeline import convert

    for mat in sorted((REPO / "examples").glob("*.mat")):
        yield f"golden_{mat.stem}", convert(mat, None, check=False)
    yield from real_conversions()


def main() -> None:
    results = dict(conversions())
    files = {name: r.code for name, r in results.items()}
    with tempfile.TemporaryDirectory() as tmp:
        mypy = mypy_findings(files, Path(tmp))
    print(f"{'conversion':64} {'layers':>6} {'network':>8} {'ruff':>5} {'mypy':>5}")
    big = []
    ruff_total = 0
    for name, code in files.items():
        ruff = len(ruff_findings(code))
        ruff_total += ruff
        layers, share = len(results[name].network.nodes), network_share(code)
        if layers >= 20:
            big.append((share, name))
        print(f"{name[:64]:64} {layers:6d} {share:8.1%} {ruff:5d} {len(mypy[name]):5d}")
    print(
        f"files {len(files)}; ruff findings {ruff_total}; mypy errors "
        f"{sum(map(len, mypy.values()))}; networks of 20+ layers {len(big)}, "
        f"{sum(s >= 0.6 for s, _ in big)} of them at least 60 % network"
    )


if __name__ == "__main__":
    main()
