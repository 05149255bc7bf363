"""How much of each generated model.py is the network, and how clean it is.

Prints, for every golden in generated_examples/ and every network in
../shared/fixtures/real that converts: its layer count, the share of
non-blank lines (literal data such as class names left out) that are
``__init__`` + ``forward``, and the findings of ``ruff check --select ALL``
(with the fixed ignore list in tests/lint_generated.py) and ``mypy --strict``.

    python benchmarks/readability.py
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from lint_generated import (  # noqa: E402
    goldens,
    mypy_findings,
    network_share,
    real_conversions,
    ruff_findings,
)


def layer_count(code: str) -> int:
    found = re.search(r"with (\d+) layers?, layer for layer", code)
    return int(found.group(1)) if found else 0


def main() -> None:
    files = goldens()
    files.update((name, result.code) for name, result in real_conversions())
    with tempfile.TemporaryDirectory() as tmp:
        mypy = mypy_findings(files, Path(tmp))
    print(f"{'conversion':64} {'layers':>6} {'network':>8} {'ruff':>5} {'mypy':>5}")
    big = []
    ruff_total = 0
    for name, code in files.items():
        ruff = len(ruff_findings(code))
        ruff_total += ruff
        layers, share = layer_count(code), network_share(code)
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
