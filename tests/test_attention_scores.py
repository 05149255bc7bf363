"""selfAttentionLayer's 'scores' output (HasScoresOutput) against the NumPy
reference, in the layout MATLAB documents for attention()'s weights:
keys×queries×heads×N, unformatted; the generated code holds (N, heads,
queries, keys). The layer cases of tests/test_layers.py cover the scores as a
dlnetwork output, unused, and read by a later layer after a padding mask."""

from __future__ import annotations

import sys
from pathlib import Path

import matlab as M
import numpy as np
import pytest
import scipy.io
import torch
from conftest import convert_records

from codegen import reference as R
from codegen.cli import main
from codegen.diagnostics import ConversionError
from codegen.inspection import inspect
from codegen.verify import verify

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _dag_with_scores(tmp_path: Path) -> Path:
    """A DAGNetwork whose causal attention's scores feed a function layer."""
    layers = [
        M.sequence_input("in", 3),
        M.self_attention("att", 3, 2, 4, mask="causal", scores=True),
        M.function_layer("fs", "@(s) 2*s"),
        M.indexing1d("last"),
    ]
    pairs = [("in", "att"), ("att/scores", "fs"), ("att/out", "last")]
    convert_records(tmp_path, {"net": M.dag(layers, pairs)})
    return tmp_path / "net.mat"


def test_dag_predict_ignores_the_causal_mask_in_the_scores_too(tmp_path: Path) -> None:
    path = _dag_with_scores(tmp_path)
    report = verify(path, tmp_path / "out")
    assert report.ok, report.render()
    code = (tmp_path / "out" / "model.py").read_text()
    assert "att, att_scores = self.att.with_scores(x)" in code
    assert "key_channels=4, causal=False)" in code  # switched off, and said why


def test_inspect_and_docstring_state_both_layouts(tmp_path: Path) -> None:
    path = _dag_with_scores(tmp_path)
    att = next(e for e in inspect(path)["layers"] if e["name"] == "att")
    assert att["outputs"][1] == {
        "matlab_size": "T×T×2",
        "matlab_format": "UUUU",
        "torch_layout": "N×heads×queries×keys",
        "torch_shape": ["N", 2, "T", "T"],
    }
    layers = [
        M.sequence_input("in", 3),
        M.self_attention("att", 3, 2, 4, scores=True),
    ]
    net = M.dlnetwork(layers, [("in", "att")], outputs=["att/out", "att/scores"])
    result, _ = convert_records(tmp_path / "b", {"net": net})
    about = " ".join(result.code[: result.code.index('"""', 3)].split())
    assert "Output 2: (N, 2, T, T), the attention scores of MATLAB layer 'att'" in about
    assert "(N, heads, queries, keys)" in about
    assert "keys-by-queries-by-heads-by-N array (T-by-T-by-2-by-N)" in about


def test_verify_against_matlab_scores_takes_keys_first(tmp_path: Path) -> None:
    """Y2 saved as MATLAB holds it (keys×queries×heads×N) passes; the same
    array with keys and queries swapped, of the same size, fails."""
    layers = [
        M.sequence_input("in", 3),
        M.self_attention("att", 3, 2, 4, mask="causal", scores=True),
    ]
    net = M.dlnetwork(layers, [("in", "att")], outputs=["att/out", "att/scores"])
    _, out = convert_records(tmp_path, {"net": net})
    x = np.random.default_rng(5).standard_normal((3, 2, 6)).astype(np.float32)
    y, scores = R.run_graph(layers, [("in", "att")], {"in": x.astype(np.float64)})[
        "att"
    ]
    assert scores.data.shape == (6, 6, 2, 2)  # keys×queries×heads×N
    ref = tmp_path / "ref.mat"
    data = {"X": x, "Y1": y.data.astype(np.float32)}
    scipy.io.savemat(ref, {**data, "Y2": scores.data.astype(np.float32)})
    assert (
        main(["verify", str(tmp_path / "net.mat"), str(out), "--against", str(ref)])
        == 0
    )
    swapped = scores.data.transpose(1, 0, 2, 3).astype(np.float32)
    scipy.io.savemat(ref, {**data, "Y2": swapped})
    assert (
        main(["verify", str(tmp_path / "net.mat"), str(out), "--against", str(ref)])
        == 1
    )


def test_with_scores_matches_forward_and_masks() -> None:
    from templates.helpers.self_attention import SelfAttention

    torch.manual_seed(0)
    att = SelfAttention(4, 2, key_channels=6, causal=True)
    x = torch.randn(3, 5, 4)
    pad = torch.ones(3, 5, 4)
    pad[1, 3:] = 0  # observation 2: steps 4 and 5 are padding
    with torch.no_grad():
        for mask in (None, pad):
            y, w = att.with_scores(x, mask)
            torch.testing.assert_close(y, att(x, mask))
            assert w.shape == (3, 2, 5, 5)  # (N, heads, queries, keys)
            torch.testing.assert_close(w.sum(-1), torch.ones(3, 2, 5))
            assert not w.triu(1).any()  # causal: no key after its query
        assert not w[1, :, :, 3:].any()  # padded keys get no weight


def test_generated_scores_code_passes_ruff_all(tmp_path: Path) -> None:
    """(mypy --strict covers the helper in test_generated_lint; the call site
    is one tuple assignment.)"""
    from lint_generated import ruff_findings

    from codegen.plan import unread_stores

    layers = [
        M.sequence_input("in", 3),
        M.self_attention("att", 3, 2, 4, mask="causal", scores=True),
    ]
    net = M.dlnetwork(layers, [("in", "att")], outputs=["att/out", "att/scores"])
    result, _ = convert_records(tmp_path, {"net": net})
    assert ruff_findings(result.code) == []
    assert unread_stores(result.plan) == []


def test_user_layer_reading_scores_is_a_stub_sized_like_them(tmp_path: Path) -> None:
    """Only a functionLayer or user code may read the unformatted scores: a
    built-in layer is refused, a user-defined one is a stub whose stand-in
    (the conversion's check) returns (N, heads, T, T)."""
    from codegen import stubs

    layers = [
        M.sequence_input("in", 3),
        M.self_attention("att", 3, 2, 4, scores=True),
        M.plain_layer("myScoresLayer", "mine"),
    ]
    pairs = [("in", "att"), ("att/scores", "mine")]
    net = M.dlnetwork(layers, pairs, outputs=["att/out", "mine"])
    result, out = convert_records(tmp_path, {"net": net})
    assert [n.name for n in stubs.stubs(result.network)] == ["mine"]
    from conftest import import_generated

    model = import_generated(out).load_model()
    stubs.stand_ins(model, result.network)
    with torch.no_grad():
        _, scores = model(torch.zeros(1, 5, 3))
    assert scores.shape == (1, 2, 5, 5)

    layers[2] = M.relu("mine")
    net = M.dlnetwork(layers, pairs, outputs=["att/out", "mine"])
    with pytest.raises(ConversionError) as info:
        convert_records(tmp_path / "b", {"net": net})
    assert "'mine' (nnet.cnn.layer.ReLULayer)" in info.value.render()
    assert "reads a selfAttentionLayer's attention scores" in info.value.render()
