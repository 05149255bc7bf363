"""Every network in ../shared/fixtures/real converts (or is refused precisely).

A converted network is run in a fresh `python -I` subprocess that cannot
import the converter or its dependencies; it loads its weights strictly and
runs on seeded random input of the declared size. Its output, and the output
of every layer module, must match the NumPy reference of MATLAB semantics run
on the parameters saved in the .mat file.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import reference as R
from conftest import FIXTURES, assert_parity, require_fixtures

from codegen.diagnostics import ConversionError
from codegen.ir import PaddedModule
from codegen.matfile import MatObject, load_variables
from codegen.pipeline import convert

RUNNER = Path(__file__).with_name("run_generated.py")
CHAIN_CLASSES = ("SeriesNetwork", "layer array")

# (file, variable) → words the refusal must contain.
REFUSED = {
    (
        "matlab-deep-learning__Abnormal-EEG-Signal-Classification-Using-CNNs__eegNet.mat",
        "net",
    ): (
        "'elu2' (identityLayer)",
        "user-defined layer",
    ),
    ("tuzkreekman__mimo-detect-and-decode__trainedNet.mat", "net"): (
        "(sigmoidLayer)",
        "(sigmoidClassificationLayer)",
        "user-defined layer",
    ),
}
# Sequence networks are the subject of the sequence issue; until then they
# must be refused with a message naming the sequence layers.
SEQUENCE_LAYERS = ("SequenceInputLayer",)


def manifest() -> list[dict]:
    path = FIXTURES / "real" / "MANIFEST.json"
    return json.loads(path.read_text()) if path.is_file() else []


def chain_networks() -> list[tuple[str, str]]:
    return [
        (e["file"], n["variable"])
        for e in manifest()
        for n in e["networks"]
        if n["class"] in CHAIN_CLASSES and "." not in n["variable"]
    ]


def matlab_input(t, n: int, seed: int = 7) -> np.ndarray:
    shape = (*t.spatial, t.channels, n) if t.spatial else (t.channels, n)
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def torch_layout(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x.transpose(3, 2, 0, 1) if x.ndim == 4 else x.T)


def run_isolated(model_dir: Path, inputs: list[np.ndarray], tmp: Path) -> dict:
    np.savez(tmp / "inputs.npz", **{f"arg{i}": x for i, x in enumerate(inputs)})
    proc = subprocess.run(
        [
            sys.executable,
            "-I",
            str(RUNNER),
            str(model_dir),
            str(tmp / "inputs.npz"),
            str(tmp / "out.npz"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return dict(np.load(tmp / "out.npz"))


@pytest.mark.parametrize(("file", "var"), chain_networks(), ids=lambda v: v[:60])
def test_chain_network(file: str, var: str, tmp_path: Path) -> None:
    require_fixtures()
    path = FIXTURES / "real" / file
    record = load_variables(path, [var])[var]
    layers = record.fields["Layers"] if isinstance(record, MatObject) else record
    classes = {layer.classname.rsplit(".", 1)[-1] for layer in layers}
    refusal = REFUSED.get((file, var))
    if refusal is None and classes & {c.rsplit(".", 1)[-1] for c in SEQUENCE_LAYERS}:
        refusal = SEQUENCE_LAYERS
    if refusal:
        with pytest.raises(ConversionError) as info:
            convert(path, tmp_path / "out", var=var)
        message = info.value.render()
        for words in refusal:
            assert words in message
        assert not (tmp_path / "out").exists(), "a refused conversion wrote files"
        return

    result = convert(path, tmp_path / "out", var=var)
    net = result.network
    t = net.inputs[0].type
    n = 1 if np.prod(t.spatial or (1,)) > 10_000 else 2
    x = matlab_input(t, n)
    outputs = run_isolated(tmp_path / "out", [torch_layout(x)], tmp_path)

    untrained = any("no trained weights" in note for note in result.notes)
    if untrained:
        # MATLAB saved no weights: nothing to compare, but it must load and run.
        assert outputs["output0"].shape[0] == n
        return
    expected = R.run_layers(layers, x)
    assert_parity(
        outputs["output0"], R.to_torch(expected[-1]), f"{file} output", rtol=1e-4
    )
    for node, value in zip(net.nodes, expected, strict=True):
        key = f"layer:{node.ident}"
        if key in outputs and not (isinstance(node, PaddedModule) and node.crop):
            assert_parity(
                outputs[key],
                R.to_torch(value),
                f"{file} layer {node.name!r}",
                rtol=1e-4,
            )
