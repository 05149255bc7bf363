"""Stubs: real networks with untranslatable layers convert, and a stub filled
in by hand verifies against outputs computed independently of the converter."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import scipy.io
import torch
from conftest import FIXTURES, import_generated, require_fixtures

from codegen import reference as R
from codegen.cli import main
from codegen.matfile import load_variables, write_mat
from codegen.pipeline import convert

EEG = "matlab-deep-learning__Abnormal-EEG-Signal-Classification-Using-CNNs__eegNet.mat"
GRADIENT = "pac48__latent-control-idea__network-gradient__dlnet.mat"


def test_grouped_warning_and_strict(tmp_path: Path, capsys) -> None:
    require_fixtures()
    path = FIXTURES / "real" / EEG
    assert main(["convert", str(path), "-o", str(tmp_path / "a")]) == 0
    err = capsys.readouterr().err
    assert err.count("warning:") == 1
    assert (
        "IdentityLayer (identityLayer): 4 layers ('elu2', 'elu4', 'elu6', 'elu8')"
        in err
    )
    assert err.count("user-defined layer") == 0  # the refusal text is not repeated
    code = (tmp_path / "a" / "model.py").read_text()
    assert code.count("class IdentityLayer(nn.Module)") == 1
    assert code.count("= IdentityLayer()") == 4

    assert main(["convert", str(path), "-o", str(tmp_path / "b"), "--strict"]) == 1
    assert "'elu2' (identityLayer)" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_inspect_shows_stubs(capsys) -> None:
    require_fixtures()
    assert main(["inspect", str(FIXTURES / "real" / GRADIENT)]) == 0
    row = next(
        line
        for line in capsys.readouterr().out.splitlines()
        if "pass_through_layer" in line
    )
    assert row.rstrip().endswith("stub passThroughLayer")


def _reference_without(path: Path, var: str, layer: str, x: np.ndarray) -> np.ndarray:
    """MATLAB semantics (the NumPy reference) of the network with ``layer``
    (a pass-through) removed: what predict(net, x) returns."""
    layers, pairs = R.matlab_graph(load_variables(path, [var])[var])
    feeds = [s for s, d in pairs if d.split("/")[0] == layer]
    pairs = [(feeds[0] if s.split("/")[0] == layer else s, d) for s, d in pairs]
    pairs = [(s, d) for s, d in pairs if d.split("/")[0] != layer]
    layers = [lay for lay in layers if str(lay.get("Name")) != layer]
    values = R.run_graph(layers, pairs, {"data": x})
    return values["layer"][0].data


def test_verify_names_stubs_then_passes_when_written(tmp_path: Path, capsys) -> None:
    require_fixtures()
    path = FIXTURES / "real" / GRADIENT
    out = tmp_path / "out"
    assert main(["convert", str(path), "-o", str(out)]) == 0
    assert main(["verify", str(path), str(out)]) == 1
    assert "'pass_through_layer' (PassThroughLayer)" in capsys.readouterr().err

    # The user writes the stub: passThroughLayer passes its input through.
    model = out / "model.py"
    code = model.read_text()
    filled, count = re.subn(
        r"(class PassThroughLayer\(nn\.Module\):.*?def forward\(self, x: torch\.Tensor\) -> torch\.Tensor:\n"
        r"        \"\"\".*?\"\"\"\n).*?raise NotImplementedError\(msg\)",
        r"\1        return x",
        code,
        flags=re.S,
    )
    assert count == 1
    model.write_text(filled)

    x = np.random.default_rng(3).standard_normal((67, 67, 3, 2)).astype(np.float32)
    y = _reference_without(path, "dlnet", "pass_through_layer", x.astype(np.float64))
    ref = tmp_path / "ref.mat"
    scipy.io.savemat(ref, {"X": x, "Y": y.astype(np.float32)})
    capsys.readouterr()
    assert (
        main(["verify", str(path), str(out), "--against", str(ref)]) == 0
    ), capsys.readouterr()

    # A wrong hand-written layer fails the comparison.
    model.write_text(filled.replace("        return x\n", "        return 2 * x\n", 1))
    assert main(["verify", str(path), str(out), "--against", str(ref)]) == 1


MY_LAYERS = '''
import torch
from torch import nn


class passThroughLayer(nn.Module):
    """MATLAB's passThroughLayer: its input, unchanged."""

    def __init__(self, *, w: tuple[int, ...]) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(w))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x
'''


def test_custom_layers_are_pasted_and_checked(tmp_path: Path, capsys) -> None:
    require_fixtures()
    path = FIXTURES / "real" / GRADIENT
    mine = tmp_path / "my_layers.py"
    mine.write_text(MY_LAYERS)
    out = tmp_path / "out"
    args = ["convert", str(path), "-o", str(out), "--custom-layers", str(mine)]
    assert main([*args, "--strict"]) == 0
    assert "warning" not in capsys.readouterr().err
    code = (out / "model.py").read_text()
    assert "class PassThroughLayer(nn.Module):" in code
    # no stub left (loss_fn() may still raise: a dlnetwork saves no loss)
    assert "raise NotImplementedError(msg)" not in code.split("\ndef loss_fn")[0]

    x = np.random.default_rng(4).standard_normal((67, 67, 3, 1)).astype(np.float32)
    y = _reference_without(path, "dlnet", "pass_through_layer", x.astype(np.float64))
    ref = tmp_path / "ref.mat"
    scipy.io.savemat(ref, {"X": x, "Y": y.astype(np.float32)})
    assert main(["verify", str(path), str(out), "--against", str(ref)]) == 0

    # A class without the file's tensor 'w' is refused with what to fix.
    mine.write_text(MY_LAYERS.replace("self.w = ", "self.v = "))
    assert main([*args, "--force"]) == 1
    assert "register each numeric matlab property" in capsys.readouterr().err.lower()


def test_hand_written_stub_survives_regeneration(tmp_path: Path) -> None:
    """The EEG network's identityLayer stubs, written by hand, are kept when a
    changed copy of the network is converted into the same folder."""
    require_fixtures()
    record = load_variables(FIXTURES / "real" / EEG, ["net"])["net"]
    first = tmp_path / "first.mat"
    write_mat(first, {"net": record})
    out = tmp_path / "out"
    convert(first, out)
    code = (out / "model.py").read_text()
    mine, count = re.subn(
        r"(class IdentityLayer\(nn\.Module\):.*?\"\"\"\n        ).*?raise NotImplementedError\(msg\)",
        r"\1return x",
        code,
        count=1,
        flags=re.S,
    )
    assert count == 1
    (out / "model.py").write_text(mine)

    layers = [
        (
            type(la)(
                la.classname,
                {**la.fields, "Probability": np.array([[0.3]])},
                la.saveobj,
            )
            if la.get("Name") == "drop1"
            else la
        )
        for la in record.get("Layers")
    ]
    changed = type(record)(
        record.classname, {**record.fields, "Layers": layers}, record.saveobj
    )
    second = tmp_path / "second.mat"
    write_mat(second, {"net": changed})
    result = convert(second, out)
    merged = (out / "model.py").read_text()
    assert "nn.Dropout(0.3)" in merged  # the converter's change
    body = merged[merged.index("class IdentityLayer") :]
    body = body[: body.index("\nclass ")]
    assert "return x" in body and "NotImplementedError" not in body  # the user's code
    model = import_generated(out).load_model()  # and it runs
    shape = result.network.inputs[0].type.torch_shape[1:]
    with torch.no_grad():
        assert model(torch.zeros(1, *shape)).shape[:2] == (1, 2)


def test_inspect_takes_custom_layers(tmp_path: Path, capsys) -> None:
    """inspect --custom-layers: the layers the file provides are 'custom' and the
    network counts as fully convertible, checked with the user's code."""
    require_fixtures()
    path = str(FIXTURES / "real" / GRADIENT)
    mine = tmp_path / "my_layers.py"
    for text in (
        MY_LAYERS,
        MY_LAYERS.replace("passThroughLayer(", "PassThroughLayer("),
    ):
        mine.write_text(text)  # by MATLAB class, then by generated class name
        assert main(["inspect", path, "--custom-layers", str(mine)]) == 0
        out = capsys.readouterr().out
        row = next(line for line in out.splitlines() if "pass_through_layer" in line)
        assert row.rstrip().endswith("custom passThroughLayer")
        assert out.rstrip().endswith(
            "Every layer converts (1 with your --custom-layers classes)."
        )
    assert main(["inspect", path, "--custom-layers", str(mine), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["stubs"], report["custom"], report["convertible"]) == (0, 1, True)

    # a class that cannot hold the file's tensor: not convertible, and why
    mine.write_text(MY_LAYERS.replace("self.w = ", "self.v = "))
    assert main(["inspect", path, "--custom-layers", str(mine)]) == 1
    assert "register each numeric matlab property" in capsys.readouterr().out.lower()
