"""Rebuild examples/*.mat, generated_examples/ and the README layer table.

Run it (or `nox -s examples_update`) after a change that alters generated
code, then review the diff; test_examples.py fails until the committed files
match what the converter produces.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from codegen.layers import supported_table  # noqa: E402
from codegen.matfile import write_mat  # noqa: E402
from codegen.pipeline import convert  # noqa: E402
from examples import EXAMPLES  # noqa: E402

REPO = HERE.parent
TABLE_START = "<!-- supported-layers:start -->"
TABLE_END = "<!-- supported-layers:end -->"
MATCONVNET_START = "<!-- matconvnet-layers:start -->"
MATCONVNET_END = "<!-- matconvnet-layers:end -->"


def build(mat_dir: Path, out_dir: Path) -> None:
    mat_dir.mkdir(parents=True, exist_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Generated examples",
        "",
        "Committed outputs of `mat2torch convert` on the project's own example networks",
        "(sources in `examples/`, built by `tests/examples.py`). A test regenerates them and",
        "compares byte for byte; `nox -s examples_update` rewrites them. One edge case each:",
        "",
    ]
    for name, (make, about) in EXAMPLES.items():
        mat = mat_dir / f"{name}.mat"
        write_mat(mat, make())
        convert(mat, out_dir / name, force=True)
        lines.append(f"- `{name}/`: {about}.")
    (out_dir / "README.md").write_text("\n".join(lines) + "\n")


def readme_with_table(text: str) -> str:
    start, end = text.index(TABLE_START), text.index(TABLE_END)
    text = (
        text[: start + len(TABLE_START)] + "\n" + supported_table() + "\n" + text[end:]
    )
    start, end = text.index(MATCONVNET_START), text.index(MATCONVNET_END)
    table = supported_table(matconvnet=True)
    return text[: start + len(MATCONVNET_START)] + "\n" + table + "\n" + text[end:]


def main() -> None:
    build(REPO / "examples", REPO / "generated_examples")
    readme = REPO / "README.md"
    readme.write_text(readme_with_table(readme.read_text()))
    print("examples/, generated_examples/ and the README table are up to date")


if __name__ == "__main__":
    main()
