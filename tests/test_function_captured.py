"""functionLayer with captured matrices: M*x and [a; b] on 'CB' data.

The layer cases 'function-captured-*' of tests/test_layers.py compare the
translation with the NumPy reference; here: what stays outside the grammar
(a stub, as before), and the two real dlnetworks of latent-control-idea whose
soft-argmax '@(W)[XFlat*W;YFlat*W]' now converts and verifies.
"""

from __future__ import annotations

from pathlib import Path

import matlab as M
import numpy as np
import pytest
import scipy.io
from conftest import FIXTURES, require_fixtures
from test_stubs import MY_LAYERS, _reference_without

from codegen import stubs
from codegen.cli import main
from codegen.inspection import inspect
from codegen.ir import TensorType
from codegen.layers.function import translate
from codegen.matfile import write_mat
from codegen.pipeline import convert
from codegen.verify import verify

BC = "pac48__latent-control-idea__image-control-BC__dlnet.mat"
F28 = "pac48__latent-control-idea__dlnet@f28e0bd.mat"
CB = TensorType(channels=4)
GRID = {"XFlat": np.ones((1, 4)), "YFlat": np.arange(4.0).reshape(1, 4)}


def test_soft_argmax_translation() -> None:
    found = translate("@(W)[XFlat*W;YFlat*W]", 1, (CB,), GRID)
    assert found.expression == "torch.cat([{0} @ {XFlat}.T, {0} @ {YFlat}.T], dim=1)"
    assert found.channels == 2
    assert list(found.constants) == ["XFlat", "YFlat"]


@pytest.mark.parametrize(
    ("text", "in_type", "why"),
    [
        ("@(W) W*XFlat", CB, "NAME\\*x"),  # the matrix on the right
        ("@(W) [XFlat*W, YFlat*W]", CB, "expected ]"),  # horizontal concatenation
        ("@(W) XFlat.*W", CB, "NAME\\*x"),  # element-wise with a matrix
        ("@(W) 2*XFlat*W", CB, "NAME\\*x"),  # a scaled matrix
        ("@(W) XFlat", CB, "NAME\\*x"),  # the matrix itself
        ("@(W) XFlat*W", TensorType(spatial=(2, 2), channels=1), "NAME\\*x"),  # SSCB
        ("@(W) XFlat*W", TensorType(channels=4, time=True), "NAME\\*x"),  # CBT
        ("@(W) [W; W]", TensorType(spatial=(2, 2), channels=1), "'CB' data"),
        ("@(W) XFlat*W", TensorType(channels=5), "1×4 matrix times 5 channels"),
        ("@(W) [XFlat*W; W] + W", CB, "5 and 4 channels"),
    ],
)
def test_outside_the_grammar_is_refused(
    text: str, in_type: TensorType, why: str
) -> None:
    with pytest.raises(ValueError, match=why):
        translate(text, 1, (in_type,), GRID)


def test_refused_function_is_still_a_stub_with_its_matrices(tmp_path: Path) -> None:
    layers = [
        M.feature_input("in", 4),
        M.function_layer("fn", "@(W) W*XFlat", captured=GRID),
    ]
    path = tmp_path / "net.mat"
    write_mat(path, {"net": M.series(layers)})
    fn = next(e for e in inspect(path)["layers"] if e["name"] == "fn")
    assert fn["status"] == "stub"
    code = convert(path, None).code
    assert "self.XFlat = nn.Buffer(torch.zeros(XFlat))" in code


def test_image_control_bc_converts_and_verifies(tmp_path: Path) -> None:
    require_fixtures()
    path = FIXTURES / "real" / BC
    result = convert(path, tmp_path / "out")
    assert not stubs.stubs(result.network)  # no stub left
    assert (
        "x = torch.cat([x @ self.layer_3_x_flat.T, x @ self.layer_3_y_flat.T], dim=1)"
        in result.code
    )
    report = verify(path, tmp_path / "out")
    assert report.ok, report.render()


def test_f28e0bd_converts_and_verifies_with_its_pass_through_written(
    tmp_path: Path,
) -> None:
    require_fixtures()
    path = FIXTURES / "real" / F28
    mine = tmp_path / "my_layers.py"
    mine.write_text(MY_LAYERS)
    out = tmp_path / "out"
    args = ["convert", str(path), "-o", str(out), "--custom-layers", str(mine)]
    assert main([*args, "--strict"]) == 0  # no stub left: 'layer' translates
    code = (out / "model.py").read_text()
    flat = "".join(code.split())
    assert "torch.cat([x@self.layer_x_flat.T,x@self.layer_y_flat.T],dim=1)" in flat

    x = np.random.default_rng(7).standard_normal((67, 67, 3, 2)).astype(np.float32)
    y = _reference_without(path, "dlnet", "pass_through_layer", x.astype(np.float64))
    assert y.shape == (2, 2)  # [x; y] per observation: square, C×N or N×C?
    ref = tmp_path / "ref.mat"
    scipy.io.savemat(ref, {"X": x, "Y": y.astype(np.float32)})
    assert main(["verify", str(path), str(out), "--against", str(ref)]) == 0
    # the two rows swapped: a different answer, caught
    scipy.io.savemat(ref, {"X": x, "Y": y[::-1].astype(np.float32)})
    assert main(["verify", str(path), str(out), "--against", str(ref)]) == 1
