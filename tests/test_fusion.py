"""load_model(fuse=True): BatchNorm folded into the layer before it, same outputs."""

from __future__ import annotations

from pathlib import Path

import matlab as M
import numpy as np
import pytest
import torch
from conftest import assert_parity, convert_records, import_generated

import examples

FOLDING = ["digits_cnn", "residual_dag", "feature_regression"]


def _outputs(model: torch.nn.Module, inputs: list[torch.Tensor]) -> list[np.ndarray]:
    with torch.no_grad():
        out = model(*inputs)
    return [o.numpy() for o in (out if isinstance(out, tuple) else (out,))]


def _check_fused(out_dir: Path) -> int:
    module = import_generated(out_dir)
    plain, fused = module.load_model(), module.load_model(fuse=True)
    g = torch.Generator().manual_seed(0)
    for layer, bn in module.BATCHNORM_FOLDS:
        assert isinstance(getattr(fused, bn), torch.nn.Identity)
        assert not torch.equal(
            getattr(fused, layer).weight, getattr(plain, layer).weight
        )
    inputs = [torch.randn(2, *s, generator=g) for s in _input_shapes(module)]
    for a, b in zip(_outputs(fused, inputs), _outputs(plain, inputs), strict=True):
        assert_parity(a, b, f"{out_dir.parent.name} fused", rtol=2e-5)
    return len(module.BATCHNORM_FOLDS)


def _input_shapes(module: object) -> list[tuple[int, ...]]:
    """(C, H, W...) of each input, from the module docstring's 'float32 (N, ...)'."""
    import re

    doc = module.__doc__ or ""
    return [
        tuple(int(n) for n in m.split(", ")[1:])
        for m in re.findall(r"float32 \(([^)]*)\)", doc)
    ]


@pytest.mark.parametrize("name", FOLDING)
def test_fused_examples_match_unfused(tmp_path: Path, name: str) -> None:
    _result, out = convert_records(tmp_path / name, getattr(examples, name)())
    assert _check_fused(out) > 0


def test_fully_connected_batchnorm_folds(tmp_path: Path) -> None:
    g = np.random.default_rng(1)
    layers = [
        M.feature_input("in", 6),
        M.fully_connected(
            "fc",
            g.standard_normal((5, 6)).astype(np.float32),
            g.standard_normal(5).astype(np.float32),
        ),
        M.batch_norm(
            "bn",
            g.standard_normal(5).astype(np.float32),
            g.uniform(0.5, 2, 5).astype(np.float32),
            g.standard_normal(5).astype(np.float32),
            g.standard_normal(5).astype(np.float32),
        ),
        M.regression("out"),
    ]
    _result, out = convert_records(tmp_path, {"net": M.series(layers)})
    assert _check_fused(out) == 1
