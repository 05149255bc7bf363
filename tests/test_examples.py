"""Golden examples and generated docs are what the converter produces now."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import reference as R
import torch
from conftest import REPO, assert_parity, import_generated
from update_examples import build, readme_with_table

from codegen.layers import FAMILY_OF, registry
from codegen.matfile import MatObject, load_variables
from examples import EXAMPLES


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("examples")
    build(root / "examples", root / "generated_examples")
    return root


def files_under(path: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(path)): p.read_bytes()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


def test_example_sources_are_current(rebuilt: Path) -> None:
    assert files_under(REPO / "examples") == files_under(rebuilt / "examples")


def test_generated_examples_are_current(rebuilt: Path) -> None:
    committed = files_under(REPO / "generated_examples")
    fresh = files_under(rebuilt / "generated_examples")
    assert committed.keys() == fresh.keys()
    for name in fresh:
        assert (
            committed[name] == fresh[name]
        ), f"{name} differs: run `nox -s examples_update`"


def test_readme_table_is_current() -> None:
    text = (REPO / "README.md").read_text()
    assert readme_with_table(text) == text, "run `nox -s examples_update`"


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_examples_match_reference(name: str) -> None:
    source = load_variables(REPO / "examples" / f"{name}.mat", ["net", "layers"])
    record = next(iter(source.values()))
    layers = record.fields["Layers"] if isinstance(record, MatObject) else record
    t = layers[0]
    size = tuple(int(v) for v in np.ravel(t.get("InputSize")))
    x = np.random.default_rng(0).uniform(0, 255, (*size, 2)).astype(np.float32)
    model = import_generated(REPO / "generated_examples" / name).load_model()
    x_torch = x.transpose(3, 2, 0, 1) if x.ndim == 4 else x.T
    with torch.no_grad():
        y = model(torch.from_numpy(np.ascontiguousarray(x_torch))).numpy()
    assert_parity(
        y, R.to_torch(R.run_layers(layers, x)[-1]), f"example {name}", rtol=1e-5
    )


def test_generated_examples_pass_black_and_ruff() -> None:
    files = [str(p) for p in (REPO / "generated_examples").rglob("model.py")]
    assert files
    black = subprocess.run(
        [sys.executable, "-m", "black", "--check", "-q", *files],
        capture_output=True,
        text=True,
    )
    assert black.returncode == 0, black.stderr
    ruff = subprocess.run(
        [
            sys.executable,
            "-m",
            "ruff",
            "check",
            "--no-cache",
            "--isolated",
            "--select",
            "E,F,W,I,B,UP",
            "--ignore",
            "E501",
            *files,
        ],
        capture_output=True,
        text=True,
    )
    assert ruff.returncode == 0, ruff.stdout + ruff.stderr


def test_registry_is_complete() -> None:
    """Each registered class has a template, a reference and a parity test."""
    import test_layers

    from codegen.render import templates_dir

    tested = {
        layer.classname for make in test_layers.CASES.values() for layer in make()[0]
    }
    reference = set(R.REFERENCE)
    for cls in registry():
        assert cls in reference, f"{cls} has no NumPy reference"
        assert cls in tested, f"{cls} has no parity test"
        assert (templates_dir() / "layers").is_dir()
    for family in set(FAMILY_OF.values()):
        assert (REPO / "codegen" / "layers" / f"{family}.py").is_file()


def test_templates_offer_the_macro_interface() -> None:
    from codegen.render import environment, templates_dir

    for path in (templates_dir() / "layers").glob("*.jinja"):
        module = environment().get_template(f"layers/{path.name}").module
        assert callable(module.init) and callable(module.forward), path.name


def test_registering_a_class_twice_fails() -> None:
    from codegen.layers import register

    with pytest.raises(RuntimeError, match="registered twice"):
        register("nnet.cnn.layer.ReLULayer", torch="x")(lambda layer: layer)
