"""Golden examples and generated docs are what the converter produces now."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO, assert_parity, import_generated
from test_layers import to_torch_input
from update_examples import build, readme_with_table

from codegen import reference as R
from codegen.layers import FAMILY_OF, TORCH_OF, registry
from codegen.matfile import list_variables, load_variables
from codegen.pipeline import convert
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
    path = REPO / "examples" / f"{name}.mat"
    record = next(
        iter(load_variables(path, [v.name for v in list_variables(path)]).values())
    )
    layers, pairs = R.matlab_graph(record)
    result = convert(path, None)
    rng = np.random.default_rng(0)
    xs = {}
    for spec in result.network.inputs:
        t = spec.type
        shape = (*t.spatial, t.channels, 2) if t.spatial else (t.channels, 2)
        if t.time:  # C×N×T sequences
            xs[spec.layer] = rng.standard_normal((*shape, 9)).astype(np.float32)
        else:
            xs[spec.layer] = rng.uniform(0, 255, shape).astype(np.float32)
    model = import_generated(REPO / "generated_examples" / name).load_model()
    args = [
        torch.from_numpy(np.ascontiguousarray(to_torch_input(xs[s.layer], s.type.time)))
        for s in result.network.inputs
    ]
    with torch.no_grad():
        ys = model(*args)
    ys = ys if isinstance(ys, tuple) else (ys,)
    if pairs is None:
        values = {
            layers[-1].get("Name"): [R.run_layers(layers, next(iter(xs.values())))[-1]]
        }
    else:
        values = R.run_graph(layers, pairs, xs)
    for y, out in zip(ys, result.network.outputs, strict=True):
        expected = (
            values[out.port.layer][out.port.index]
            if pairs
            else next(iter(values.values()))[0]
        )
        assert_parity(y.numpy(), R.to_torch(expected), f"example {name}", rtol=1e-5)


def test_in_place_layers_train_like_out_of_place_ones(tmp_path) -> None:
    """In-place ReLUs and += must leave the gradients alone, not just the outputs.

    The golden residual network is rewritten with every in-place step spelled
    out of place; both versions then take one training step's backward pass.
    """
    source = (REPO / "generated_examples" / "residual_dag" / "model.py").read_text()
    accumulate = re.compile(r"^(\s+)x \+= (\w+)$", re.MULTILINE)
    plain = accumulate.sub(r"\1x = x + \2", source)
    plain = plain.replace("nn.ReLU(inplace=True)", "nn.ReLU()")
    assert accumulate.search(source) and "ReLU(inplace=True)" in source
    assert not accumulate.search(plain) and "ReLU(inplace=True)" not in plain
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "model.py").write_text(plain)
    weights = REPO / "generated_examples" / "residual_dag" / "weights.pt"
    x = torch.rand(2, 3, 32, 32) * 255
    grads = []
    for folder in (REPO / "generated_examples" / "residual_dag", tmp_path / "plain"):
        model = import_generated(folder).load_model(weights).train()
        y = model(x.clone())
        y.square().sum().backward()
        grads.append([y.detach(), *(p.grad for p in model.parameters())])
    for a, b in zip(*grads, strict=True):
        assert torch.equal(a, b)


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
    import test_matconvnet

    from codegen.render import templates_dir

    tested = {
        layer.classname for make in test_layers.CASES.values() for layer in make()[0]
    }
    tested |= test_matconvnet.covered_classes()
    reference = set(R.REFERENCE)
    for cls in registry():
        if TORCH_OF[cls].startswith(("refused", "a stub")):
            continue  # registered only to explain the refusal
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
