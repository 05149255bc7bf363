"""Every network in ../shared/fixtures/real converts (or is refused precisely).

A converted network is run in a fresh `python -I` subprocess that cannot
import the converter or its dependencies; it loads its weights strictly and
runs on seeded random input of the declared size. Its outputs, and the
output of every layer module, must match the NumPy reference of MATLAB
semantics run on the parameters saved in the .mat file.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES, assert_parity, require_fixtures

from codegen import reference as R
from codegen import stubs
from codegen.diagnostics import ConversionError
from codegen.ir import ModuleNode
from codegen.matfile import load_variables
from codegen.pipeline import convert, example_steps
from codegen.verify import load_generated

RUNNER = Path(__file__).with_name("run_generated.py")
# Largest input (values per observation) run at its declared size; bigger
# fully convolutional networks run on a 256-pixel crop of it.
FULL_SIZE_LIMIT = 3_000_000

# (file, variable) → words the refusal must contain.
# (file, variable) → the stub classes its conversion must write.
POTHOLE = (
    "mmmmyyyyxxxx__Pothole-Road-Detection-and-Recognition-based-on-Computer-Vision"
    "__detector.mat"
)
STUBBED = {
    # its two networks are structs inside the detector, chosen with --var
    (POTHOLE, "detector.Network"): ("RoiMaxPooling2DLayer",),
    (POTHOLE, "detector.RegionProposalNetwork"): ("RpnReshape",),
    (
        "matlab-deep-learning__Abnormal-EEG-Signal-Classification-Using-CNNs__eegNet.mat",
        "net",
    ): ("IdentityLayer",),
    ("tuzkreekman__mimo-detect-and-decode__trainedNet.mat", "net"): ("SigmoidLayer",),
    (
        "MATLAB-Community-Toolboxes-at-INCF__DeepInterpolation-MATLAB__pretrainedModels__fmri_pretrained_matlab_compatible.mat",
        "net",
    ): ("Zeropad",),
    ("pac48__latent-control-idea__dlnet.mat", "dlnet"): (
        "ConstLayer",
        "TfOffsetLayer",
        "NerfLayer",
        "TfLayer",
        "ProjectionLayer",
    ),
    ("pac48__latent-control-idea__dlnet@f28e0bd.mat", "dlnet"): (
        "PassThroughLayer",  # its soft-argmax 'layer' is translated
    ),
    ("pac48__latent-control-idea__network-gradient__dlnet.mat", "dlnet"): (
        "PassThroughLayer",
    ),
}
REFUSED = {
    ("giangcutebhc2__residual-unet__residual_unet@3770d8e.mat", "layers"): (
        "'d4_contac'",
        "376×376×128 and 375×375×128",
        "MATLAB rejects this network too",
    ),
    (POTHOLE, "detector"): (
        "fasterRCNNObjectDetector",
        "holds 2 networks",
        "--var detector.Network",
    ),
}


def check_stubbed(net, out: Path, classes: tuple[str, ...]) -> None:
    """The stubbed file loads strictly; its first stub raises, naming itself."""
    import torch

    assert [py for py in stubs.groups(net)] == list(classes)
    model = load_generated(out).load_model()
    xs = [
        torch.zeros(1, *(4 if d == "T" else d for d in s.type.torch_shape[1:]))
        for s in net.inputs
    ]
    with pytest.raises(NotImplementedError, match=classes[0]):
        model(*xs)


def manifest() -> list[dict]:
    path = FIXTURES / "real" / "MANIFEST.json"
    return json.loads(path.read_text()) if path.is_file() else []


def networks() -> list[tuple[str, str]]:
    """(file, top-level variable) of every network in the corpus."""
    seen: list[tuple[str, str]] = []
    for entry in manifest():
        for net in entry["networks"]:
            key = (entry["file"], net["variable"].split(".")[0])
            if key not in seen:
                seen.append(key)
    if any(file == POTHOLE for file, _ in seen):
        seen += [key for key in STUBBED if key[0] == POTHOLE]
    return seen


def matlab_input(t, n: int, seed: int, steps: int) -> np.ndarray:
    shape = (*t.spatial, t.channels, n) if t.spatial else (t.channels, n)
    if t.time:
        shape = (*shape, steps)
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def torch_layout(x: np.ndarray, sequence: bool) -> np.ndarray:
    if sequence:  # C×N×T → N×T×C
        return np.ascontiguousarray(x.transpose(1, 2, 0))
    if x.ndim == 2:
        return np.ascontiguousarray(x.T)
    return np.ascontiguousarray(x.transpose(x.ndim - 1, x.ndim - 2, *range(x.ndim - 2)))


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
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return dict(np.load(tmp / "out.npz"))


@pytest.mark.parametrize(("file", "var"), networks(), ids=lambda v: v[:60])
def test_real_network(file: str, var: str, tmp_path: Path) -> None:
    require_fixtures()
    path = FIXTURES / "real" / file
    refusal = REFUSED.get((file, var))
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
    if (file, var) in STUBBED:
        check_stubbed(net, tmp_path / "out", STUBBED[file, var])
        return
    layers, pairs = R.matlab_graph(load_variables(path, [var])[var])
    types = [spec.type for spec in net.inputs]
    big = max(np.prod(t.spatial or (1,)) * t.channels for t in types) > FULL_SIZE_LIMIT
    if big:  # run fully convolutional giants on a smaller image
        types = [
            type(t)(spatial=tuple(min(s, 256) for s in t.spatial), channels=t.channels)
            for t in types
        ]
    n = 1 if max(np.prod(t.spatial or (1,)) for t in types) > 10_000 else 2
    steps = {spec.layer: example_steps(net, spec) for spec in net.inputs}
    xs = {
        spec.layer: matlab_input(t, n, 7 + i, steps[spec.layer])
        for i, (spec, t) in enumerate(zip(net.inputs, types, strict=True))
    }
    args = [torch_layout(xs[s.layer], s.type.time) for s in net.inputs]
    outputs = run_isolated(tmp_path / "out", args, tmp_path)

    if any("no trained weights" in note for note in result.notes):
        # MATLAB saved no weights: nothing to compare, but it must load and run.
        assert all(outputs[f"output{i}"].shape[0] == n for i in range(len(net.outputs)))
        return
    if pairs is None:
        values = R.run_layers(layers, xs[net.inputs[0].layer])
        by_name = {node.name: [v] for node, v in zip(net.nodes, values, strict=True)}
    else:
        by_name = R.run_graph(layers, pairs, xs)
    for i, out in enumerate(net.outputs):
        expected = by_name[out.port.layer][out.port.index]
        assert_parity(
            outputs[f"output{i}"], R.to_torch(expected), f"{file} output {i}", rtol=1e-4
        )
    names = json.loads(str(outputs["layer_names"]))
    activations = {name: outputs[f"layer{i}"] for i, name in enumerate(names)}
    hooked = [n for n in net.nodes if isinstance(n, ModuleNode) and n.hookable()]
    assert {n.name for n in hooked} == set(activations)
    for node in hooked:
        expected = R.to_torch(by_name[node.name][0])
        if node.out_types[0].time_last:  # forward holds it as (N, C, T)
            expected = np.swapaxes(expected, 1, 2)
        assert_parity(
            activations[node.name], expected, f"{file} layer {node.name!r}", rtol=1e-4
        )
