"""The forward planner on its own, and the naming pass's derived names."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import matlab as M
import numpy as np
import pytest
import torch
from conftest import assert_parity, convert_records, import_generated

from codegen import reference as R
from codegen.matfile import write_mat
from codegen.pipeline import build, load_graph
from codegen.plan import ForwardPlan, unread_stores

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((REPO / "examples").glob("*.mat"))


def plan_of(path: Path, var: str | None = None) -> ForwardPlan:
    return build(load_graph(path, var))[1]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_no_unread_store_in_any_golden(path: Path) -> None:
    assert unread_stores(plan_of(path)) == []


def test_checker_finds_what_a_reviewer_would_cut() -> None:
    plan = plan_of(REPO / "examples" / "two_input_two_output.mat")
    # put back the old planner's dead alias: `concat = x` ... `del concat`
    i = next(i for i, s in enumerate(plan.steps) if s.node.name == "concat")
    steps = list(plan.steps)
    steps[i] = dataclasses.replace(steps[i], alias="concat")
    steps[i + 2] = dataclasses.replace(steps[i + 2], free=("concat",))
    broken = dataclasses.replace(plan, steps=tuple(steps))
    assert unread_stores(broken) == ["concat from 'concat' is deleted unread"]
    # and an output nothing reads
    steps = list(plan.steps)
    k = next(k for k, s in enumerate(steps) if s.node.name == "relu")
    steps[k] = dataclasses.replace(steps[k], outs=("unused",))
    found = unread_stores(dataclasses.replace(plan, steps=tuple(steps)))
    assert "unused from 'relu' is never read" in found


def test_value_read_while_x_still_holds_it_gets_no_alias() -> None:
    plan = plan_of(REPO / "examples" / "two_input_two_output.mat")
    by_name = {s.node.name: s for s in plan.steps}
    assert by_name["concat"].alias == ""
    assert by_name["mu"].args == ("x",) and by_name["logvar"].args == ("x",)


def test_residual_plan_keeps_the_skip_and_overwrites_in_place() -> None:
    plan = plan_of(REPO / "examples" / "residual_dag.mat")
    by_name = {s.node.name: s for s in plan.steps}
    assert by_name["stem_relu"].alias == "stem_relu"
    assert by_name["res1_add"].args == ("x", "stem_relu")
    assert {"res1_add", "res2_add", "stem_relu"} <= plan.in_place
    assert by_name["res1_add"].free == ("stem_relu",)


def test_single_output_is_returned_typed_not_through_x() -> None:
    plan = plan_of(REPO / "examples" / "residual_dag.mat")
    assert plan.steps[-1].annotated and plan.returns == ("softmax",)
    assert plan.steps[-1].outs == ("softmax",)
    two = plan_of(REPO / "examples" / "two_input_two_output.mat")
    assert not any(s.annotated for s in two.steps)


def test_plan_is_shared_by_render_and_docstring(tmp_path: Path) -> None:
    result, out = convert_records(tmp_path, {"net": _lstm_with_state_then("lstm_h0")})
    code = (out / "model.py").read_text()
    for name in result.plan.inputs:
        assert f"Input {name}:" in code and f"def forward(self, {name}:" in code


# ---- names derived from layer names go through the naming pass ---------------------


def _lstm_with_state_then(next_name: str) -> object:
    g = np.random.default_rng(3)
    layers = [
        M.sequence_input("in", 3),
        M.recurrent(
            "LSTM",
            "lstm",
            3,
            4,
            seed=1,
            h0=g.standard_normal(4),
            c0=g.standard_normal(4),
        ),
        M.fully_connected(
            next_name, g.standard_normal((2, 4)), g.standard_normal((2, 1))
        ),
        M.regression("out"),
    ]
    return M.series(layers)


def test_buffer_named_like_a_later_layer_does_not_clash(tmp_path: Path) -> None:
    """The buffer lstm_h0 and the layer 'lstm_h0' once collided: "internal
    error: the weights do not fit the generated module"."""
    net = _lstm_with_state_then("lstm_h0")
    result, out = convert_records(tmp_path, {"net": net})
    lstm = result.network.node("lstm")
    assert result.network.node("lstm_h0").ident == "lstm_h0"  # the layer keeps its name
    assert lstm.named("h0") == "lstm_h0_2" and lstm.named("c0") == "lstm_c0"
    model = import_generated(out).load_model()  # strict load
    x = np.random.default_rng(0).standard_normal((3, 1, 6)).astype(np.float32)
    with torch.no_grad():
        y = model(torch.from_numpy(np.ascontiguousarray(x.transpose(1, 2, 0)))).numpy()
    expected = R.run_layers(list(net.get("Layers")), x)[-1]
    assert_parity(y, R.to_torch(expected), "lstm state + lstm_h0 layer")


def test_input_buffers_have_no_double_underscore(tmp_path: Path) -> None:
    """A layer named 'input' is attribute input_ (a built-in), but its
    buffers are input_mean, not input__mean."""
    stats = {"Mean": np.ones(3), "Std": np.full(3, 2.0)}
    layers = [
        M.feature_input("input", 3, "zscore", **stats),
        M.fully_connected("fc", np.ones((2, 3)), np.zeros((2, 1))),
        M.regression("out"),
    ]
    result, out = convert_records(tmp_path, {"net": M.series(layers)})
    node = result.network.node("input")
    assert (node.named("mean"), node.named("std")) == ("input_mean", "input_std")
    assert "self.input_mean = nn.Buffer" in (out / "model.py").read_text()


def test_write_mat_roundtrip_of_the_clash_network(tmp_path: Path) -> None:
    """The same network read back from disk keeps both names apart."""
    write_mat(tmp_path / "n.mat", {"net": _lstm_with_state_then("lstm_h0")})
    net, _ = build(load_graph(tmp_path / "n.mat"))
    idents = [n.ident for n in net.nodes] + [v for n in net.nodes for _, v in n.names]
    assert len(idents) == len(set(idents))


def test_inspect_reports_the_plan_render_uses() -> None:
    from codegen.inspection import inspect

    report = inspect(REPO / "examples" / "residual_dag.mat")
    forward = {e["name"]: e["forward"] for e in report["layers"] if "forward" in e}
    assert forward["res2_bn2"] == {"variable": "res2_bn2", "in_place": False}
    assert forward["res1_add"] == {"variable": "x", "in_place": True}
    assert "classoutput" not in forward  # elided: forward returns softmax's output
    code = (REPO / "generated_examples" / "residual_dag" / "model.py").read_text()
    assert "res2_bn2 = self.res2_bn2(x)" in code and "x += stem_relu" in code
