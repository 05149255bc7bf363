"""The conversion's self-check: strict, sharing the weights, cheap on big inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from codegen import selfcheck
from codegen.weights import Weights


class _Pooled(nn.Module):
    """Accepts any input size (global pooling); records the sizes it saw."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.seen: list[tuple[int, ...]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(tuple(x.shape))
        return self.conv(x).mean(dim=(2, 3))


class _Flat(_Pooled):
    """Accepts only its declared 16×16 input (flatten before a linear layer)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4 * 16 * 16, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(tuple(x.shape))
        return self.fc(torch.flatten(self.conv(x), 1))


def _state(cls: type[nn.Module]) -> dict[str, np.ndarray]:
    torch.manual_seed(1)
    return {k: v.numpy().copy() for k, v in cls().state_dict().items()}


def test_load_is_strict_and_shares_the_arrays() -> None:
    state = _state(_Flat)
    model = selfcheck.load_strict(_Flat, state)
    assert not model.training
    assert np.shares_memory(model.fc.weight.detach().numpy(), state["fc.weight"])
    del state["fc.bias"]
    with pytest.raises(RuntimeError, match=r"fc\.bias"):
        selfcheck.load_strict(_Flat, state)


def test_big_networks_run_at_a_reduced_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(selfcheck, "REAL_RUN_BUDGET", 100)
    model = selfcheck.load_strict(_Pooled, _state(_Pooled))
    assert selfcheck.prove_runs(model, [((1, 3, 16, 16), 2)], 4 * 16 * 16) == "1/8"
    assert model.seen == [(1, 3, 2, 2)]


def test_fixed_size_networks_fall_back_to_the_declared_size(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(selfcheck, "REAL_RUN_BUDGET", 100)
    model = selfcheck.load_strict(_Flat, _state(_Flat))
    assert selfcheck.prove_runs(model, [((1, 3, 16, 16), 2)], 4 * 16 * 16) == "1"
    assert model.seen[-1] == (1, 3, 16, 16)


def test_a_layer_fixing_the_size_skips_the_smaller_trials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """VGG-16's fc6 fits 224x224 only: three failed passes through every
    convolution (a third of a full one) are not run."""
    monkeypatch.setattr(selfcheck, "REAL_RUN_BUDGET", 100)
    model = selfcheck.load_strict(_Flat, _state(_Flat))
    shape = [((1, 3, 16, 16), 2)]
    assert selfcheck.prove_runs(model, shape, 4 * 16 * 16, reducible=False) == "1"
    assert model.seen == [(1, 3, 16, 16)]


@pytest.mark.parametrize(
    ("example", "fixed"),
    [
        ("digits_cnn", ["fc"]),  # 7x7 positions flattened
        ("legacy_alexnet_2017", ["fc6"]),
        ("residual_dag", []),  # global pooling first: any size
        ("feature_regression", []),
        ("lstm_classifier", []),
    ],
)
def test_which_layers_fix_the_input_size(example: str, fixed: list[str]) -> None:
    from codegen.pipeline import build, load_graph

    mat = Path(__file__).parents[1] / "examples" / f"{example}.mat"
    net, _ = build(load_graph(mat))
    assert [n.ident for n in net.nodes if n.fixes_size] == fixed


def test_small_networks_run_at_the_declared_size() -> None:
    model = selfcheck.load_strict(_Pooled, _state(_Pooled))
    assert selfcheck.prove_runs(model, [((1, 3, 16, 16), 2)], 4 * 16 * 16) == "1"
    assert model.seen == [(1, 3, 16, 16)]


def test_a_broken_module_still_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(selfcheck, "REAL_RUN_BUDGET", 100)
    model = selfcheck.load_strict(_Flat, _state(_Flat))
    with pytest.raises(RuntimeError):
        selfcheck.prove_runs(model, [((1, 3, 15, 16), 2)], 4 * 16 * 16)


def test_weights_file_does_not_depend_on_aliasing_or_strides(tmp_path) -> None:
    a = np.arange(6, dtype=np.float64).reshape(2, 3)
    shared = np.zeros((), dtype=np.int64)
    one = {
        "a": a,
        "n1": shared,
        "n2": shared,
        "s": np.broadcast_to(np.float32(2), (1, 1)),
    }
    two = {
        "a": a.copy(),
        "n1": np.zeros(()),
        "n2": np.zeros((), np.int64),
        "s": np.full((1, 1), 2, np.float32),
    }
    two["n1"] = two["n1"].astype(np.int64)
    assert bytes(Weights(one)) == bytes(Weights(two))
    with (tmp_path / "w.pt").open("wb") as fh:
        Weights(one).write(fh)
    loaded = torch.load(tmp_path / "w.pt", weights_only=True)
    assert loaded["a"].dtype == torch.float32  # float64 learnables saved as float32
    assert torch.equal(loaded["a"], torch.arange(6.0).reshape(2, 3))


def test_serialized_weights_equal_the_archive_and_copy_it_whole(tmp_path) -> None:
    """The temporary-file form compares, loads and copies as the bytes would."""
    import os

    state = {"w": np.arange(300_000, dtype=np.float32).reshape(600, 500)}
    data = bytes(Weights(state))
    serialized = Weights(state).serialize()
    assert len(serialized) == len(data) and serialized == data
    assert serialized != data[:-1] + bytes([data[-1] ^ 1])
    (tmp_path / "a.pt").write_bytes(data)
    assert serialized.same_as_file(tmp_path / "a.pt")
    fd = os.open(tmp_path / "b.pt", os.O_WRONLY | os.O_CREAT)
    try:
        serialized.write_to(fd)
    finally:
        os.close(fd)
    assert (tmp_path / "b.pt").read_bytes() == data
