"""Every golden goes through torch.export, torch.compile and ONNX (Runtime) unchanged.

Deployment routes users take: each must accept the generated module as it
is and give the eager module's outputs (float32 tolerance).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import assert_parity, import_generated

GOLDENS = Path(__file__).resolve().parent.parent / "generated_examples"
# inductor (the default) compiles C++ per golden: minutes on 2 cores. The
# benchmark uses it; the tests check that Dynamo captures the whole forward
# (fullgraph) and AOTAutograd traces it, which is where generated code breaks.
COMPILE_BACKEND = "aot_eager"
NAMES = sorted(p.name for p in GOLDENS.iterdir() if (p / "model.py").is_file())


STEPS = 5  # sequence length for the (N, T, C) inputs


def _setup(
    name: str,
) -> tuple[torch.nn.Module, tuple[torch.Tensor, ...], list[np.ndarray]]:
    module = import_generated(GOLDENS / name)
    model = module.load_model()
    shapes = [
        tuple(STEPS if n == "T" else int(n) for n in m.split(", ")[1:])
        for m in re.findall(r"float32 \(([^)]*)\)", module.__doc__ or "")
    ]
    assert shapes, f"{name}: no input shapes in the docstring"
    g = torch.Generator().manual_seed(0)
    inputs = tuple(torch.randn(2, *s, generator=g) for s in shapes)
    return model, inputs, _run(model, inputs)


def _run(model: object, inputs: tuple[torch.Tensor, ...]) -> list[np.ndarray]:
    with torch.no_grad():
        out = model(*inputs)  # type: ignore[operator]
    return [o.detach().numpy() for o in (out if isinstance(out, tuple) else (out,))]


def _compare(actual: list[np.ndarray], expected: list[np.ndarray], what: str) -> None:
    assert len(actual) == len(expected), what
    for a, e in zip(actual, expected, strict=True):
        assert_parity(np.asarray(a), e, what, rtol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_torch_export(name: str) -> None:
    model, inputs, expected = _setup(name)
    exported = torch.export.export(model, inputs)
    _compare(_run(exported.module(), inputs), expected, f"{name} torch.export")


@pytest.mark.parametrize("name", NAMES)
def test_onnx_export_runs_in_onnxruntime(name: str, tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    model, inputs, expected = _setup(name)
    path = tmp_path / f"{name}.onnx"
    torch.onnx.export(model, inputs, str(path), dynamo=True)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {
        i.name: x.numpy() for i, x in zip(session.get_inputs(), inputs, strict=True)
    }
    _compare(session.run(None, feeds), expected, f"{name} onnxruntime")


@pytest.mark.parametrize("name", NAMES)
def test_torch_compile(name: str) -> None:
    model, inputs, expected = _setup(name)
    # Dynamo does not trace nn.LSTM/GRU (graph break by design, gb0014): one
    # graph is required everywhere else.
    rnn = any(isinstance(m, torch.nn.RNNBase) for m in model.modules())
    compiled = torch.compile(model, backend=COMPILE_BACKEND, fullgraph=not rnn)
    _compare(_run(compiled, inputs), expected, f"{name} torch.compile")
