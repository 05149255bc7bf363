"""Naming pass and output safety: a hostile .mat can never become code."""

from __future__ import annotations

import io
import keyword
import subprocess
import sys
import tokenize
from pathlib import Path

import matlab as M
import numpy as np
import pytest
import torch
from conftest import convert_records, import_generated

from codegen.matfile import write_mat
from codegen.naming import MODULE_ATTRIBUTES, class_name, identifier, unique_identifiers

HOSTILE = [
    '"""\nimport os #',
    "conv\nimport os",
    "a'b\"c",
    '"""; import os #',
    "x # comment",
    "__init__",
    "class",
    "1conv",
    "forward",
    "x",
    "résumé çonv",
    "层1",
    "\\N{BULLET}",
    "'); __import__('pathlib').Path('PWNED').touch(); ('",
    "",
    "conv",
    "conv",
    "Conv",
    "state_dict",
    "self",
]


def test_identifier_rules() -> None:
    assert identifier("conv_1") == "conv_1"
    assert (
        identifier("ClassificationLayer_predictions")
        == "classification_layer_predictions"
    )
    assert identifier("biLSTM") == "bi_lstm"
    assert identifier("fire2-concat") == "fire2_concat"
    assert identifier("__init__") == "init"
    assert identifier("1conv") == "layer_1conv"
    assert identifier("class") == "class_"
    assert identifier("match") == "match_"  # soft keyword
    assert identifier("forward") == "forward_"
    assert identifier("résumé") == "resume"
    assert identifier("层", "conv") == "conv"
    assert identifier("", "relu") == "relu"
    assert identifier("x") == "x_"


def test_every_identifier_is_valid_and_unique() -> None:
    idents = unique_identifiers(HOSTILE, ["layer"] * len(HOSTILE))
    assert len(set(idents)) == len(idents)
    for ident in idents:
        assert ident.isidentifier() and ident.isascii()
        assert not keyword.iskeyword(ident) and not keyword.issoftkeyword(ident)
        assert not ident.startswith("_") and "__" not in ident
        assert ident not in MODULE_ATTRIBUTES


def test_module_attribute_list_covers_installed_torch() -> None:
    public = {name for name in dir(torch.nn.Module) if not name.startswith("_")}
    assert public <= MODULE_ATTRIBUTES


def test_class_names() -> None:
    assert class_name("airCompNet") == "AirCompNet"
    assert class_name("layers_1") == "Layers1"
    assert class_name("net") == "Net"
    assert class_name("Path") == "PathNet"


def _names_in_code(code: str) -> set[str]:
    tokens = tokenize.generate_tokens(io.StringIO(code).readline)
    return {t.string for t in tokens if t.type == tokenize.NAME}


def _hostile_net(names: list[str], classes: list[str]):
    layers = [M.image_input(names[0], (4, 5, 2))]
    for i, name in enumerate(names[1:]):
        layers.append(M.relu(name) if i % 2 else M.dropout(name, 0.25))
    layers += [
        M.fully_connected(
            "fc", np.ones((len(classes), 40), np.float32), np.zeros(len(classes))
        ),
        M.softmax("sm"),
        M.classification('out"""\nimport os', classes),
    ]
    return M.series(layers)


def test_hostile_names_never_become_code(tmp_path: Path, monkeypatch) -> None:
    classes = ['"""', "'); import os; ('", "\n", "é", "a\\b"]
    benign_names = [f"layer{i}" for i in range(len(HOSTILE))]
    _, benign_out = convert_records(
        tmp_path / "benign", {"net": _hostile_net(benign_names, ["a"] * 5)}
    )
    result, out = convert_records(
        tmp_path / "hostile", {"net": _hostile_net(HOSTILE, classes)}
    )
    code = (out / "model.py").read_text()
    benign = (benign_out / "model.py").read_text()

    # Every name token in the code is vocabulary of a benign conversion, the
    # attribute → MATLAB name map that renamed layers get, or an identifier
    # made by the naming pass.
    idents = {node.ident for node in result.network.nodes}
    idents |= {name for node in result.network.nodes for _, name in node.names}
    name_map = {"MATLAB_NAMES", "get"}
    assert _names_in_code(code) - _names_in_code(benign) <= idents | name_map
    compile(code, "model.py", "exec")

    monkeypatch.chdir(tmp_path)
    module = import_generated(out)
    assert not (tmp_path / "PWNED").exists()
    assert module.CLASSES == tuple(classes)
    model = module.load_model()
    with torch.no_grad():
        assert model(torch.zeros(1, 2, 4, 5)).shape == (1, 5)


def test_hostile_file_name(tmp_path: Path) -> None:
    evil = tmp_path / 'evil"""\nimport os #.mat'
    write_mat(evil, {"net": _hostile_net(["in", "d"], ["a", "b"])})
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "codegen",
            "convert",
            str(evil),
            "-o",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    code = (tmp_path / "out" / "model.py").read_text()
    compile(code, "model.py", "exec")
    assert "import os" not in code.split('"""')[2]  # outside the docstring


@pytest.mark.parametrize("name", ["", "", ""])
def test_unnamed_layers_get_class_names(name: str, tmp_path: Path) -> None:
    net = M.series(
        [M.image_input("", (3, 3, 1)), M.relu(name), M.relu(name), M.regression("")]
    )
    result, _ = convert_records(tmp_path, {"net": net})
    assert [n.ident for n in result.network.nodes] == [
        "image_input_1",
        "re_lu_1",
        "re_lu_2",
        "regression_output_1",
    ]
