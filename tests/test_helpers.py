"""The helpers pasted into generated files, tested as the modules they are.

Each is checked against an independent statement of the same operation:
NumPy's padding modes, PyTorch's own LSTM/GRU where MATLAB's options agree
with them, or MATLAB's formula written out in NumPy.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def helper(name: str) -> ModuleType:
    return importlib.import_module(f"templates.helpers.{name}")


def test_pad_symmetric_is_numpys_symmetric_mode() -> None:
    x = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5)
    pads = (2, 1, 0, 3)  # left, right, top, bottom
    got = helper("pad_symmetric").pad_symmetric(x, pads).numpy()
    want = np.pad(x.numpy(), ((0, 0), (0, 0), (0, 3), (2, 1)), mode="symmetric")
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    ("size", "kernel", "stride"), [(7, 3, 2), (8, 3, 2), (9, 4, 3), (5, 1, 2)]
)
def test_same_padding_gives_matlab_output_size_and_puts_the_odd_one_last(
    size: int, kernel: int, stride: int
) -> None:
    x = torch.zeros(1, 1, size, size + 1)
    pads = helper("same_padding").same_padding(x, (kernel, kernel), (stride, stride))
    for (before, after), n in zip(
        ((pads[2], pads[3]), (pads[0], pads[1])), (size, size + 1), strict=True
    ):
        out = (n + before + after - kernel) // stride + 1
        assert out == -(-n // stride)  # MATLAB: ceil(n / stride)
        assert after - before in (0, 1)


def test_crop_like_centre_is_matlabs_one_based_offset() -> None:
    x = torch.arange(9 * 8, dtype=torch.float32).reshape(1, 1, 9, 8)
    ref = torch.zeros(1, 1, 4, 5)
    got = helper("crop_like").crop_like(x, ref)
    top = (9 // 2 + 1) - (4 // 2 + 1)  # floor(X/2+1) - floor(Y/2+1), 1-based → 0-based
    left = (8 // 2 + 1) - (5 // 2 + 1)
    np.testing.assert_array_equal(
        got.numpy(), x.numpy()[..., top : top + 4, left : left + 5]
    )


def _copy_params(src: nn.Module, dst: nn.Module) -> None:
    dst.load_state_dict(src.state_dict())


@pytest.mark.parametrize("bidirectional", [False, True])
def test_matlab_lstm_with_default_activations_is_nn_lstm(bidirectional: bool) -> None:
    torch.manual_seed(0)
    ref = nn.LSTM(3, 5, batch_first=True, bidirectional=bidirectional)
    ours = helper("matlab_lstm").MatlabLSTM(3, 5, bidirectional=bidirectional)
    _copy_params(ref, ours)
    x = torch.randn(2, 7, 3)
    d = 2 if bidirectional else 1
    state = (torch.randn(d, 2, 5), torch.randn(d, 2, 5))
    (y1, (h1, c1)), (y2, (h2, c2)) = ref(x, state), ours(x, state)
    for a, b in ((y1, y2), (h1, h2), (c1, c2)):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)


def test_matlab_gru_after_multiplication_is_nn_gru() -> None:
    torch.manual_seed(1)
    ref = nn.GRU(4, 3, batch_first=True, bidirectional=True)
    ours = helper("matlab_gru").MatlabGRU(4, 3, bidirectional=True)
    _copy_params(ref, ours)
    x = torch.randn(2, 6, 4)
    (y1, h1), (y2, h2) = ref(x), ours(x)
    torch.testing.assert_close(y2, y1, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(h2, h1, rtol=1e-5, atol=1e-6)


def test_matlab_gru_before_multiplication_applies_reset_to_the_state() -> None:
    torch.manual_seed(2)
    gru = helper("matlab_gru").MatlabGRU(2, 3, reset_gate="before-multiplication")
    for p in gru.parameters():
        nn.init.normal_(p)
    x, h = torch.randn(1, 1, 2), torch.randn(1, 1, 3)
    y, _ = gru(x, h)
    w_ih, w_hh = gru.weight_ih_l0.detach().numpy(), gru.weight_hh_l0.detach().numpy()
    b_ih, b_hh = gru.bias_ih_l0.detach().numpy(), gru.bias_hh_l0.detach().numpy()
    xv, hv = x[0, 0].numpy(), h[0, 0].numpy()
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    gx = w_ih @ xv + b_ih
    r = sig(gx[:3] + w_hh[:3] @ hv + b_hh[:3])
    z = sig(gx[3:6] + w_hh[3:6] @ hv + b_hh[3:6])
    n = np.tanh(gx[6:] + w_hh[6:] @ (r * hv) + b_hh[6:])
    np.testing.assert_allclose(
        y[0, 0].detach().numpy(), (1 - z) * n + z * hv, rtol=1e-5
    )


def test_hard_sigmoid_is_matlabs_clip() -> None:
    v = torch.tensor([-4.0, -2.5, 0.0, 1.0, 2.5, 4.0])
    got = helper("matlab_recurrent").hard_sigmoid(v).numpy()
    np.testing.assert_allclose(got, np.clip(0.2 * v.numpy() + 0.5, 0, 1))


def test_avg_pool_mean_pad_divides_by_real_elements() -> None:
    x = torch.arange(1, 17, dtype=torch.float32).reshape(1, 1, 4, 4)
    pool = helper("avg_pool_mean_pad").AvgPoolMeanPad2d(3, 2, (1, 1, 1, 1))
    got = pool(x).numpy()[0, 0]
    a = x.numpy()[0, 0]
    want = np.array(
        [
            [a[max(i - 1, 0) : i + 2, max(j - 1, 0) : j + 2].mean() for j in (0, 2)]
            for i in (0, 2)
        ]
    )
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_cross_channel_norm_window_matches_matlab_for_even_sizes() -> None:
    x = torch.randn(1, 6, 2, 2, generator=torch.Generator().manual_seed(3))
    size, alpha, beta, k = 4, 1e-2, 0.75, 2.0
    got = helper("cross_channel_norm").CrossChannelNorm(size, alpha, beta, k)(x).numpy()
    a = x.numpy()
    want = np.empty_like(a)
    for c in range(6):  # MATLAB: (size - 1) // 2 channels back, size // 2 ahead
        window = a[:, max(c - (size - 1) // 2, 0) : c + size // 2 + 1]
        want[:, c] = a[:, c] / (k + alpha * (window**2).sum(1) / size) ** beta
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_resize_nearest_doubling_repeats_pixels() -> None:
    x = torch.arange(6, dtype=torch.float32).reshape(1, 1, 2, 3)
    got = helper("matlab_resize").MatlabResize(scale_factor=(2.0, 2.0))(x)
    want = x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    torch.testing.assert_close(got, want)


def test_yolov2_transform_activates_each_block() -> None:
    x = torch.randn(1, 2 * 7, 3, 3, generator=torch.Generator().manual_seed(4))
    got = helper("yolov2_transform").YOLOv2Transform(2)(x).numpy()
    a = x.numpy().reshape(1, 7, 2, 3, 3)  # channel k * anchors + a
    scores = np.exp(a[:, 5:]) / np.exp(a[:, 5:]).sum(1, keepdims=True)
    want = np.concatenate([1 / (1 + np.exp(-a[:, :3])), np.exp(a[:, 3:5]), scores], 1)
    np.testing.assert_allclose(got, want.reshape(1, 14, 3, 3), rtol=1e-5)


def test_every_helper_is_pasted_without_imports_or_docstring() -> None:
    from codegen.helpers import closure, helper_names

    pasted = closure(["avg_pool_mean_pad"])
    assert [h.name for h in pasted] == ["same_padding", "avg_pool_mean_pad"]
    assert all("import" not in h.code.splitlines()[0] for h in pasted)
    assert "AvgPoolMeanPad2d" in helper_names() and "same_padding" in helper_names()
