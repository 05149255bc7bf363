"""Training-ready output: MATLAB's losses, learn-rate and L2 factors, fine-tuning.

Losses are checked against codegen/reference.py (NumPy, MATLAB layouts and
one-hot targets), value and gradient w.r.t. the last learnable layer; the
factors against the values a separate scan of the real files found.
"""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import (
    REPO,
    assert_parity,
    convert_records,
    import_generated,
    require_fixtures,
)
from torch import nn

from codegen import reference, training
from codegen.pipeline import build, convert, load_graph

RTOL = 1e-5  # float32 sums of a few hundred terms


def _helper(name: str) -> Any:
    return importlib.import_module(f"templates.helpers.{name}")


def _one_hot(idx: np.ndarray, classes: int, axis: int) -> np.ndarray:
    """MATLAB's 1-of-K targets; index -1 (undefined) gives an all-zero column."""
    hot = (idx[..., None] == np.arange(classes)).astype(np.float64)
    return np.moveaxis(hot, -1, axis)


def _close(actual: Any, expected: Any, what: str) -> None:
    assert_parity(np.asarray(actual), np.asarray(expected), what, rtol=RTOL)


def _fc_grad(grad_out: np.ndarray, x: np.ndarray) -> np.ndarray:
    """dloss/dW of y = W x for every position: grad_out K×N×..., x N×...×I."""
    axes = list(range(1, grad_out.ndim))
    return np.tensordot(grad_out, np.moveaxis(x, -1, 0), axes=(axes, axes))


# --------------------------------------------------------------------------
# Classification: a fully connected layer (the last learnable) + softmax.


@pytest.mark.parametrize(
    ("layout", "weighted"),
    [("CB", False), ("CB", True), ("CBT", False), ("SSCB", True)],
)
@pytest.mark.parametrize("logits", [False, True])
def test_cross_entropy_value_and_gradient(
    layout: str, weighted: bool, logits: bool
) -> None:
    g = np.random.default_rng(len(layout) + weighted)
    n, c_in, k, steps, h, w_ = 3, 5, 4, 6, 3, 2
    rest = {"CB": (), "CBT": (steps,), "SSCB": (h, w_)}[layout]
    x = g.standard_normal((n, *rest, c_in))  # channels last: FC = x @ W.T
    weight = g.standard_normal((k, c_in))
    idx = g.integers(0, k, size=(n, *rest))
    if layout != "CB":
        idx.flat[::5] = -1  # undefined time steps / pixels
    class_w = g.uniform(0.5, 3.0, k) if weighted else None

    # PyTorch: the generated helper on N×C / N×T×C / N×C×H×W
    fc = torch.tensor(weight, dtype=torch.float32, requires_grad=True)
    z = torch.tensor(x, dtype=torch.float32) @ fc.T
    class_dim = -1 if layout == "CBT" else 1
    if layout == "SSCB":
        z = z.movedim(-1, 1)
    y = z if logits else torch.softmax(z, class_dim)
    loss_mod = _helper("matlab_cross_entropy").MatlabCrossEntropy(
        class_dim, tuple(class_w) if weighted else (), logits=logits
    )
    loss = loss_mod(y, torch.tensor(idx))
    loss.backward()

    # NumPy reference in MATLAB layout: C first, then B (then T / S last)
    zm = np.einsum("...i,ki->k...", x, weight)  # C×N×rest
    fmt = {"CB": "CB", "CBT": "CBT", "SSCB": "CBSS"}[layout]
    ym = np.exp(zm - zm.max(0)) / np.exp(zm - zm.max(0)).sum(0)
    ref, grad_y = reference.crossentropyex(ym, _one_hot(idx, k, 0), fmt, class_w)
    grad_z = reference.softmax_backward(ym, grad_y, axis=0)
    grad_w = _fc_grad(grad_z, x)
    what = f"crossentropy {layout} weighted={weighted} logits={logits}"
    _close(loss.item(), ref, f"{what}: value")
    _close(fc.grad.numpy(), grad_w, f"{what}: dL/dW")


def test_cross_entropy_is_not_pytorchs_weighted_mean() -> None:
    """nn.CrossEntropyLoss(weight=w) divides by the summed weights, MATLAB by N."""
    g = np.random.default_rng(1)
    z = torch.tensor(g.standard_normal((8, 3)), dtype=torch.float32)
    t = torch.tensor(g.integers(0, 3, 8))
    w = (1.0, 5.0, 0.2)
    ours = _helper("matlab_cross_entropy").MatlabCrossEntropy(1, w, logits=True)(z, t)
    theirs = nn.CrossEntropyLoss(weight=torch.tensor(w))(z, t)
    assert abs(float(ours) - float(theirs)) > 0.05


# --------------------------------------------------------------------------
# Regression: a fully connected layer is the last learnable.


@pytest.mark.parametrize("layout", ["CB", "SSCB", "CBT"])
def test_half_mse_value_and_gradient(layout: str) -> None:
    g = np.random.default_rng(7)
    n, c_in, r = 4, 3, 5
    rest = {"CB": (), "SSCB": (3, 2), "CBT": (7,)}[layout]
    x = g.standard_normal((n, *rest, c_in))
    weight = g.standard_normal((r, c_in))
    target = g.standard_normal((n, *rest, r))
    fc = torch.tensor(weight, dtype=torch.float32, requires_grad=True)
    y = torch.tensor(x, dtype=torch.float32) @ fc.T
    mse = _helper("matlab_half_mse").MatlabHalfMSE(1 if layout == "CBT" else None)
    loss = mse(y, torch.tensor(target, dtype=torch.float32))
    loss.backward()

    ym = np.moveaxis(np.einsum("...i,ki->...k", x, weight), -1, 0)
    tm = np.moveaxis(target, -1, 0)
    fmt = {"CB": "CB", "SSCB": "CBSS", "CBT": "CBT"}[layout]
    ref, grad_y = reference.half_mse(ym, tm, fmt)
    grad_w = _fc_grad(grad_y, x)
    _close(loss.item(), ref, f"half_mse {layout}: value")
    _close(fc.grad.numpy(), grad_w, f"half_mse {layout}: dL/dW")
    # nn.MSELoss is a different number: mean over responses, no 1/2
    assert abs(nn.MSELoss()(y, torch.tensor(target).float()).item() - ref) > 1e-3


def test_untranslated_loss_names_the_layer_and_sum_adds_losses() -> None:
    stub = _helper("matlab_loss_stub").MatlabLossNotTranslated(
        "fb classification", "Fb_loss", "defines its own loss."
    )
    with pytest.raises(NotImplementedError, match="Fb_loss"):
        stub(torch.zeros(1), torch.zeros(1))
    mse = _helper("matlab_half_mse").MatlabHalfMSE()
    both = _helper("matlab_loss_sum").MatlabLossSum(mse, mse)
    y, t = torch.ones(2, 3), torch.zeros(2, 3)
    assert float(both((y, y), (t, t))) == pytest.approx(2 * 0.5 * 3)


# --------------------------------------------------------------------------
# The generated loss_fn on converted networks


def _converted(tmp_path: Path, name: str) -> Any:
    out = tmp_path / name
    convert(REPO / "examples" / f"{name}.mat", out, force=True)
    return import_generated(out)


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("digits_cnn", "CB"),
        ("segmentation", "CBSS"),
        ("feature_regression", "BC"),
        ("bilstm_gru_regression", "BTC"),
    ],
)
def test_generated_loss_fn_is_matlabs(tmp_path: Path, name: str, fmt: str) -> None:
    mod = _converted(tmp_path, name)
    model = mod.load_model()
    g = torch.Generator().manual_seed(0)
    shape = {
        "digits_cnn": (3, 1, 28, 28),
        "segmentation": (2, 3, 24, 30),
        "feature_regression": (5, 12),
        "bilstm_gru_regression": (2, 9, 3),
    }[name]
    with torch.no_grad():
        y = model(torch.randn(shape, generator=g))
    ym = y.double().numpy()
    if hasattr(mod, "CLASSES"):
        k = y.shape[1]
        idx = torch.randint(0, k, (y.shape[0], *y.shape[2:]), generator=g)
        weights = getattr(mod, "CLASS_WEIGHTS", None)
        ref, _ = reference.crossentropyex(
            np.moveaxis(ym, 1, 0), _one_hot(idx.numpy(), k, 0), fmt, weights
        )
    else:
        t = torch.randn(y.shape, generator=g)
        ref, _ = reference.half_mse(ym, t.double().numpy(), fmt)
        idx = t
    _close(float(mod.loss_fn()(y, idx)), ref, f"loss_fn of {name}")


# --------------------------------------------------------------------------
# Learn-rate and L2 factors from real files (values: an independent scan)

REAL_FACTORS = {
    "MJSahebnasi__Deep-Gender-Detector-for-Audio__trainedNetwork_1.mat": {
        "replaced_conv.weight": (10.0, 1.0),
        "replaced_conv.bias": (10.0, 0.0),
    },
    "zstoebs__vae_segnet_verification__segnet.mat": {
        f"{c}.bias": (0.0, 0.0)
        for c in (
            "encoder1_conv1",
            "encoder1_conv2",
            "decoder1_conv1",
            "decoder1_conv2",
        )
    },
    "giangcutebhc2__residual-unet__model.mat": {"final_conv.bias": (1.0, 10.0)},
    # an untrained LSTM (layer array): its factors still reach the groups
    "Twinkle0829__Lstm-ins-gnss__layers_1.mat": {
        "lstm.weight_ih_l0": (1.0, 0.9),
        "lstm.weight_hh_l0": (1.0, 0.9),
        "lstm.bias_ih_l0": (0.9, 0.0),
        "lstm.bias_hh_l0": (0.9, 0.0),
    },
    "airtonchagas__deep-learning-cifar-10__net.mat": {
        f"{c}.bias": (2.0, 0.0) for c in ("conv_1", "conv_2", "conv_3", "fc_1", "fc_2")
    },
}


@pytest.mark.parametrize("file", sorted(REAL_FACTORS))
def test_real_factors_reach_learn_factors(file: str) -> None:
    path = require_fixtures() / "real" / file
    if not path.is_file():
        pytest.skip(f"{file} is not among the fixtures")
    net, _ = build(load_graph(path))
    got = dict(training.render(net)["factors"])
    expected = REAL_FACTORS[file]
    assert {k: got.get(k) for k in expected} == expected
    # nothing else differs from MATLAB's defaults (norm offsets: L2Factor 1)
    assert set(got) == set(expected), set(got) - set(expected)


@pytest.mark.parametrize(
    "file",
    [
        "zstoebs__vae_segnet_verification__segnet.mat",  # frozen biases
        "airtonchagas__deep-learning-cifar-10__net.mat",  # bias rate 2, L2 0
    ],
)
def test_param_groups_and_one_sgd_step_match_matlab(tmp_path: Path, file: str) -> None:
    """One SGD step with param_groups equals w - lr*LRF*(g + lambda*L2F*w)."""
    path = require_fixtures() / "real" / file
    if not path.is_file():
        pytest.skip(f"{file} is not among the fixtures")
    convert(path, tmp_path / "out", force=True)
    mod = import_generated(tmp_path / "out")
    model = mod.load_model().train()
    torch.manual_seed(0)
    net, _ = build(load_graph(path))
    x = torch.randn(2, *net.inputs[0].type.torch_shape[1:])
    lr, l2 = 0.05, 1e-2
    opt = torch.optim.SGD(model.param_groups(lr, l2), lr=lr)
    model.zero_grad()
    model(x).square().sum().backward()
    before = {k: (p.detach().clone(), p.grad) for k, p in model.named_parameters()}
    opt.step()
    norms = {
        name
        for name, m in model.named_modules()
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d))
    }
    for name, p in model.named_parameters():
        w, grad = before[name]
        # MATLAB's defaults: L2Factor 0 for conv/FC biases, 1 for BN offsets
        owner, _, kind = name.rpartition(".")
        default = (1.0, 0.0 if kind == "bias" and owner not in norms else 1.0)
        rate, l2f = REAL_FACTORS[file].get(name, default)
        assert p.requires_grad == (rate != 0)
        if grad is None:
            assert rate == 0
            expected = w.numpy()
        else:
            expected = reference.sgd_step(
                w.double().numpy(), grad.double().numpy(), lr, l2, rate, l2f
            )
        np.testing.assert_allclose(p.detach().numpy(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls", ["LSTM", "BiLSTM", "GRU"])
def test_per_gate_factors_one_sgd_step_match_matlab(tmp_path: Path, cls: str) -> None:
    """lstmLayer/gruLayer accept one factor per gate (InputWeightsLearnRateFactor
    1-by-4): each gate's rows follow w - lr*LRF_g*(grad + lambda*L2F_g*w)."""
    import dataclasses

    import matlab as M

    gates = 3 if cls == "GRU" else 4
    rates = (1.0, 2.0, 0.0, 0.5)[:gates]
    l2s = (1.0, 0.0, 3.0, 1.0)[:gates]
    rnn = M.recurrent(cls, "rnn", 3, 4, last=True)
    w = rnn.fields["InputWeights"]
    fields = {
        **rnn.fields,
        "InputWeights": {
            **w,
            "LearnRateFactor": np.array([rates]),
            "L2Factor": np.array([l2s]),
        },
    }
    rnn = dataclasses.replace(rnn, fields=fields)
    layers = [
        M.sequence_input("in", 3),
        rnn,
        M.fully_connected("fc", np.ones((2, rnn_width(cls))), np.zeros(2)),
        M.regression("out"),
    ]
    _, out = convert_records(tmp_path, {"net": M.series(layers)})
    mod = import_generated(out)
    x = torch.randn(2, 5, 3, generator=torch.Generator().manual_seed(0))
    plain = mod.load_model().train()  # the raw gradients, without hooks
    plain(x).square().sum().backward()
    before = {k: (p.detach().clone(), p.grad) for k, p in plain.named_parameters()}
    model = mod.load_model().train()
    lr, l2 = 0.1, 0.01
    opt = torch.optim.SGD(model.param_groups(lr, l2), lr=lr, momentum=0.9)
    model(x).square().sum().backward()
    opt.step()
    for suffix in ("", "_reverse") if cls == "BiLSTM" else ("",):
        name = f"rnn.weight_ih_l0{suffix}"
        w0, grad = before[name]
        got = dict(model.named_parameters())[name].detach().numpy()
        h = w0.shape[0] // gates
        for g in range(gates):
            rows = slice(g * h, (g + 1) * h)
            expected = reference.sgd_step(
                w0[rows].double().numpy(),
                grad[rows].double().numpy(),
                lr,
                l2,
                rates[g],
                l2s[g],
            )
            np.testing.assert_allclose(got[rows], expected, rtol=1e-5, atol=1e-7)
    # the other learnables keep MATLAB's scalar defaults
    name = "rnn.weight_hh_l0"
    w0, grad = before[name]
    expected = reference.sgd_step(
        w0.double().numpy(), grad.double().numpy(), lr, l2, 1.0, 1.0
    )
    np.testing.assert_allclose(
        dict(model.named_parameters())[name].detach().numpy(),
        expected,
        rtol=1e-5,
        atol=1e-7,
    )


def rnn_width(cls: str) -> int:
    return 8 if cls == "BiLSTM" else 4


# --------------------------------------------------------------------------
# The README's fine-tuning example runs and the loss goes down


def test_readme_fine_tuning_example(tmp_path: Path, monkeypatch: Any) -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Training the converted network in PyTorch", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    convert(REPO / "examples" / "digits_cnn.mat", tmp_path / "digits", force=True)
    monkeypatch.chdir(tmp_path / "digits")
    monkeypatch.syspath_prepend(str(tmp_path / "digits"))
    monkeypatch.delitem(sys.modules, "model", raising=False)
    scope: dict[str, Any] = {}
    exec(compile(code.group(1), "README.md", "exec"), scope)
    losses = scope["losses"]
    assert losses[-1] < 0.5 * losses[0], losses


# --------------------------------------------------------------------------
# Train mode: BatchNorm running statistics


@pytest.mark.parametrize("decay", [0.3, None])
def test_batchnorm_running_mean_follows_mean_decay(
    tmp_path: Path, decay: float | None
) -> None:
    """MATLAB: s = decay*s_batch + (1 - decay)*s. Without MeanDecay (old
    releases: statistics of the whole training set) the cumulative average."""
    import dataclasses

    import matlab as M

    g = np.random.default_rng(3)
    mean = g.standard_normal(2).astype(np.float32)
    bn = M.batch_norm("bn", mean, np.ones(2, np.float32), np.ones(2), np.zeros(2))
    if decay is not None:
        fields = {**bn.fields, "MeanDecay": M.d(decay), "VarianceDecay": M.d(decay)}
        bn = dataclasses.replace(bn, fields=fields)
    layers = [M.image_input("in", (4, 4, 2)), bn, M.regression("out")]
    _, out = convert_records(tmp_path, {"net": M.series(layers)})
    model = import_generated(out).load_model().train()
    x = g.standard_normal((5, 2, 4, 4)).astype(np.float32)
    model(torch.from_numpy(x))
    batch = x.mean(axis=(0, 2, 3))
    expected = batch if decay is None else decay * batch + (1 - decay) * mean
    bn_module = next(m for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    np.testing.assert_allclose(bn_module.running_mean.numpy(), expected, rtol=1e-5)


def test_a_variance_decay_pytorch_cannot_follow_is_said_in_the_docstring(
    tmp_path: Path,
) -> None:
    import dataclasses

    import matlab as M

    bn = M.batch_norm("bn", np.zeros(2), np.ones(2), np.ones(2), np.zeros(2))
    fields = {**bn.fields, "MeanDecay": M.d(0.1), "VarianceDecay": M.d(0.25)}
    bn = dataclasses.replace(bn, fields=fields)
    layers = [M.image_input("in", (4, 4, 2)), bn, M.regression("out")]
    _, out = convert_records(tmp_path, {"net": M.series(layers)})
    code = (out / "model.py").read_text()
    docstring = code.split('"""')[1]
    assert "VarianceDecay 0.25 differs" in " ".join(docstring.split())
    assert "momentum=" not in code  # MeanDecay 0.1 is PyTorch's default


@pytest.mark.parametrize(
    ("classname", "said"),
    [("nnet.cnn.layer.FocalLossLayer", "not translate"), ("Fb_loss", "its own loss")],
)
def test_untranslated_and_custom_losses_raise_naming_the_class(
    tmp_path: Path, classname: str, said: str
) -> None:
    import matlab as M

    from codegen.matfile import MatObject

    out_layer = MatObject(
        classname, {"Name": "fb", "Classes": ["a", "b"]}, saveobj=False
    )
    layers = [M.image_input("in", (4, 4, 2)), M.softmax("sm"), out_layer]
    _, out = convert_records(tmp_path, {"net": M.series(layers)})
    loss = import_generated(out).loss_fn()
    with pytest.raises(NotImplementedError, match=f"{classname}.*{said}"):
        loss(torch.ones(1, 2, 4, 4), torch.zeros(1, 4, 4))


def test_a_network_without_output_layers_has_a_loss_fn_that_raises(
    tmp_path: Path,
) -> None:
    """A dlnetwork saves no loss: loss_fn() says so instead of guessing one."""
    from examples import two_input_two_output

    _, out = convert_records(tmp_path, two_input_two_output())
    module = import_generated(out)
    with pytest.raises(NotImplementedError, match="dlnetwork 'encoder' has no output"):
        module.loss_fn()
