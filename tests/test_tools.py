"""inspect and verify: the parity tools users run on their own networks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import matlab as M
import numpy as np
import pytest
import torch
from conftest import FIXTURES, REPO, require_fixtures
from test_matfile import small_net

from codegen import reference as R
from codegen.inspection import inspect
from codegen.matfile import load_variables, write_mat
from codegen.pipeline import convert


def mat2torch(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "codegen", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
    )


def manifest_entry(name: str) -> dict:
    entries = json.loads((FIXTURES / "real" / "MANIFEST.json").read_text())
    return next(e for e in entries if e["file"] == name)


# ---- inspect ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("file", "code"),
    [
        ("brkgyln__VehicleDetection__cnn.mat", 0),
        ("giangcutebhc2__residual-unet__model.mat", 0),
        ("tuzkreekman__mimo-detect-and-decode__trainedNet.mat", 0),  # a stub
        ("giangcutebhc2__residual-unet__residual_unet@3770d8e.mat", 1),
    ],
)
def test_inspect_json_on_real_files(file: str, code: int) -> None:
    require_fixtures()
    proc = mat2torch("inspect", FIXTURES / "real" / file, "--json")
    assert proc.returncode == code, proc.stderr
    report = json.loads(proc.stdout)
    network = manifest_entry(file)["networks"][0]
    assert [e["name"] for e in report["layers"]] == network["layer_names"]
    assert [e["class"] for e in report["layers"]] == network["layer_classes"]
    assert report["convertible"] is (code == 0)
    for entry in report["layers"]:
        assert entry["status"] in ("supported", "stub", "refused", "not checked")
        if entry["status"] == "stub":
            assert entry["stub_of"] == entry["class"].rsplit(".", 1)[-1]
        if entry["status"] in ("supported", "stub"):
            assert entry["outputs"] and "matlab_size" in entry["outputs"][0]
        else:
            assert entry["reason"]


def test_inspect_text_counts_learnables(tmp_path: Path) -> None:
    write_mat(tmp_path / "net.mat", {"net": small_net()})
    proc = mat2torch("inspect", tmp_path / "net.mat")
    assert proc.returncode == 0, proc.stderr
    # conv 3×3×2×4 + 4 and fc 3×120 + 3 (the FC bias is saved as zeros)
    assert f"{3 * 3 * 2 * 4 + 4 + 3 * 120 + 3:,} learnables" in proc.stdout
    assert "5×6×4 (SSCB)" in proc.stdout and "(N, 4, 5, 6)" in proc.stdout
    assert "Classes of 'out' (3): a, b, c" in proc.stdout
    assert "Every layer converts." in proc.stdout


def test_inspect_usage_and_bad_files(tmp_path: Path) -> None:
    assert mat2torch("inspect").returncode == 2
    (tmp_path / "x.mat").write_text("nope")
    proc = mat2torch("inspect", tmp_path / "x.mat")
    assert proc.returncode == 1 and "not a MATLAB .mat file" in proc.stderr
    assert "Traceback" not in proc.stderr


# ---- verify against the NumPy reference ----------------------------------------------


@pytest.mark.parametrize(
    ("file", "var"),
    [
        ("carloslongares__IM-2017-2018__net.mat", "net"),
        (
            "MJSahebnasi__Deep-Gender-Detector-for-Audio__trainedNetwork_1.mat",
            "trainedNetwork_1",
        ),
        (
            "matlab-deep-learning__transformer-networks-for-time-series-prediction__transformer_demo.mat",
            "net",
        ),
        ("chengab12__IHFWs__net.mat", "net"),
    ],
    ids=["chain", "dag", "attention", "conv1d"],
)
def test_verify_passes_on_correct_conversions(
    file: str, var: str, tmp_path: Path
) -> None:
    require_fixtures()
    path = FIXTURES / "real" / file
    convert(path, tmp_path / "out", var=var)
    proc = mat2torch("verify", path, tmp_path / "out", "--var", var)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PASS" in proc.stdout and "layer '" in proc.stdout


def _scale_one_tensor(out: Path, key: str, factor: float = 1.05) -> None:
    state = torch.load(out / "weights.pt", weights_only=True)
    state[key] = state[key] * factor
    torch.save(state, out / "weights.pt")


@pytest.mark.parametrize(
    ("file", "var", "key", "layer"),
    [
        (
            "carloslongares__IM-2017-2018__net.mat",
            "net",
            "conv_2.weight",
            "'conv_2' (Convolution2DLayer)",
        ),
        (
            "MJSahebnasi__Deep-Gender-Detector-for-Audio__trainedNetwork_1.mat",
            "trainedNetwork_1",
            "fire4_expand3x3.weight",
            "'fire4-expand3x3' (Convolution2DLayer)",
        ),
    ],
    ids=["chain", "dag"],
)
def test_verify_names_the_layer_with_a_wrong_weight(
    file, var, key, layer, tmp_path: Path
) -> None:
    require_fixtures()
    path = FIXTURES / "real" / file
    convert(path, tmp_path / "out", var=var)
    _scale_one_tensor(tmp_path / "out", key)
    proc = mat2torch("verify", path, tmp_path / "out", "--var", var)
    assert proc.returncode == 1, proc.stdout
    assert f"First layer that diverges: {layer}." in proc.stdout
    assert "FAIL" in proc.stdout


def test_verify_on_own_example_without_fixtures(tmp_path: Path) -> None:
    convert(REPO / "examples" / "segmentation.mat", tmp_path / "out")
    assert (
        mat2torch(
            "verify", REPO / "examples" / "segmentation.mat", tmp_path / "out"
        ).returncode
        == 0
    )
    _scale_one_tensor(tmp_path / "out", "mid_conv.bias", 1.05)
    proc = mat2torch("verify", REPO / "examples" / "segmentation.mat", tmp_path / "out")
    assert proc.returncode == 1
    assert "First layer that diverges: 'mid_conv' (Convolution2DLayer)." in proc.stdout


# ---- verify against data saved in MATLAB ------------------------------------------------


def _ref_file(
    tmp_path: Path, layers, x: np.ndarray, names: list[str], y_layout: str
) -> Path:
    """A REF.mat as MATLAB would write it: X, Y = predict(net, X), activations."""
    values = R.run_layers(layers, x)
    by_name = {layer.get("Name"): v for layer, v in zip(layers, values, strict=True)}
    y = values[-1].data  # MATLAB layout: K×N (CB) or 1×1×K×N
    y = y.reshape(-1, y.shape[-1])
    if y_layout == "predict":  # SeriesNetwork/DAGNetwork predict: N×K
        y = y.T
    acts = [by_name[n].data.astype(np.float32) for n in names]
    ref = tmp_path / "ref.mat"
    write_mat(ref, {"X": x, "Y": y.astype(np.float32), "names": names, "acts": acts})
    return ref


def test_verify_against_matlab_data(tmp_path: Path) -> None:
    net = small_net()
    write_mat(tmp_path / "net.mat", {"net": net})
    convert(tmp_path / "net.mat", tmp_path / "out")
    x = np.random.default_rng(3).standard_normal((5, 6, 2, 4)).astype(np.float32)
    layers = net.fields["Layers"]
    ref = _ref_file(tmp_path, layers, x, ["conv", "relu", "fc"], "predict")
    proc = mat2torch("verify", tmp_path / "net.mat", tmp_path / "out", "--against", ref)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Compared with ref.mat" in proc.stdout
    for name in ("conv", "relu", "fc"):
        assert f"layer {name!r}" in proc.stdout

    _scale_one_tensor(tmp_path / "out", "fc.weight", 1.05)
    proc = mat2torch("verify", tmp_path / "net.mat", tmp_path / "out", "--against", ref)
    assert proc.returncode == 1
    assert "First layer that diverges: 'fc' (FullyConnectedLayer)." in proc.stdout


def test_verify_against_matlab_sequences(tmp_path: Path) -> None:
    """Sequence networks: X is a cell array of C×T sequences, as predict takes it."""
    layers = [
        M.sequence_input("in", 3),
        M.recurrent("LSTM", "lstm", 3, 4, last=True),
        M.fully_connected(
            "fc",
            np.array([[1.0, -2, 0.5, 1], [-1, 0.3, 2, -0.5]], np.float32),
            np.zeros(2, np.float32),
        ),
        M.softmax("sm"),
        M.classification("out", ["a", "b"]),
    ]
    write_mat(tmp_path / "net.mat", {"net": M.series(layers)})
    convert(tmp_path / "net.mat", tmp_path / "out")
    rng = np.random.default_rng(5)
    sequences = [rng.standard_normal((3, t)).astype(np.float32) for t in (4, 9, 6)]
    y = np.stack(
        [R.run_layers(layers, s[:, None, :])[-1].data[:, 0] for s in sequences]
    )
    write_mat(tmp_path / "ref.mat", {"X": sequences, "Y": y})
    proc = mat2torch(
        "verify",
        tmp_path / "net.mat",
        tmp_path / "out",
        "--against",
        tmp_path / "ref.mat",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    write_mat(tmp_path / "bad.mat", {"X": sequences, "Y": y[:, ::-1].copy()})
    proc = mat2torch(
        "verify",
        tmp_path / "net.mat",
        tmp_path / "out",
        "--against",
        tmp_path / "bad.mat",
    )
    assert proc.returncode == 1


def test_verify_reports_missing_model(tmp_path: Path) -> None:
    write_mat(tmp_path / "net.mat", {"net": small_net()})
    proc = mat2torch("verify", tmp_path / "net.mat", tmp_path / "nowhere")
    assert proc.returncode == 1 and "mat2torch convert" in proc.stderr
    assert "Traceback" not in proc.stderr


# ---- the activations API of generated code -----------------------------------------------


def test_activations_by_matlab_name(tmp_path: Path) -> None:
    from conftest import import_generated

    result = convert(REPO / "examples" / "residual_dag.mat", tmp_path / "out")
    module = import_generated(tmp_path / "out")
    model = module.load_model()
    x = torch.randn(2, 3, 32, 32)
    acts = model.activations(x, layers=["res1_add", "res2_skip", "fc"])
    # res1_add is computed inline (x + stem_relu): only submodule outputs are hooked
    assert set(acts) == {"res2_skip", "fc"}
    assert acts["res2_skip"].shape == (2, 16, 16, 16)
    # every layer but the input, the two additions and the output layer
    inline = {"input", "res1_add", "res2_add", "classoutput"}
    expected = {n.name for n in result.network.nodes} - inline
    assert set(model.activations(x)) == expected
    assert not model._forward_hooks and all(
        not m._forward_hooks for m in model.modules()
    )


def test_verify_refuses_untrained_networks(tmp_path: Path) -> None:
    require_fixtures()
    path = FIXTURES / "real" / "korniarp__ML_DQN__lgraph.mat"
    convert(path, tmp_path / "out", var="lgraph")
    proc = mat2torch("verify", path, tmp_path / "out", "--var", "lgraph")
    assert proc.returncode == 1
    assert "no trained weights" in proc.stderr and "--against" in proc.stderr


def test_inspect_counts_learnables_stored_as_bare_arrays() -> None:
    """positionEmbeddingLayer keeps Weights as a bare array beside its
    WeightLearnRateFactor; inspect once counted 0 learnables for it."""
    require_fixtures()
    path = (
        FIXTURES
        / "real"
        / (
            "matlab-deep-learning__transformer-networks-for-time-series-prediction"
            "__transformer_demo.mat"
        )
    )
    record = load_variables(path, ["net"])["net"]
    layer = next(r for r in record.get("Layers") if r.get("Name") == "pos-emb")
    size = int(layer.get("OutputSize").item()) * int(layer.get("MaxPosition").item())
    entry = next(e for e in inspect(path)["layers"] if e["name"] == "pos-emb")
    assert entry["learnables"] == size == 192
