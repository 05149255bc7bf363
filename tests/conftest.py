"""Shared test helpers: write MATLAB-format files, convert, import, compare."""

from __future__ import annotations

import importlib.util
import sys
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from codegen.matfile import _import_reader, write_mat
from codegen.pipeline import Result, convert

# A conversion's reader child imports mat-io itself (in parallel with the
# converter's imports); imported once here, every child inherits it.
_import_reader()

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
FIXTURES = SHARED / "fixtures"

# Worst relative errors seen, reported at the end of the run.
PARITY: list[tuple[float, str]] = []


def require_fixtures() -> Path:
    if not (FIXTURES / "real" / "MANIFEST.json").is_file():
        pytest.skip(f"real MATLAB files not found at {FIXTURES} (../shared is absent)")
    return FIXTURES


def convert_records(
    tmp_path: Path, variables: dict[str, Any], version: str = "v7", **options: Any
) -> tuple[Result, Path]:
    """Save records as MATLAB would, then convert the file into tmp_path/out."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    mat = tmp_path / "net.mat"
    write_mat(mat, variables, version=version)
    out = tmp_path / "out"
    return convert(mat, out, force=True, **options), out


def import_generated(out_dir: Path) -> Any:
    """Import a generated model.py in-process under a unique module name."""
    name = f"generated_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, out_dir / "model.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def run_generated(out_dir: Path, *inputs: np.ndarray) -> np.ndarray:
    module = import_generated(out_dir)
    model = module.load_model()
    with torch.no_grad():
        return model(
            *[torch.from_numpy(np.ascontiguousarray(x)) for x in inputs]
        ).numpy()


def relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """max |a - e| / max |e|: float32 error relative to the output's scale."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if actual.shape != expected.shape:
        if actual.size == expected.size:
            expected = expected.reshape(actual.shape)
        else:
            raise AssertionError(f"shape {actual.shape} != reference {expected.shape}")
    scale = max(float(np.abs(expected).max(initial=0.0)), 1e-6)
    return float(np.abs(actual - expected).max(initial=0.0)) / scale


def assert_parity(
    actual: np.ndarray, expected: np.ndarray, what: str, rtol: float = 1e-5
) -> None:
    err = relative_error(actual, expected)
    PARITY.append((err, what))
    assert err <= rtol, f"{what}: relative error {err:.3g} > {rtol:g}"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if PARITY:
        worst = sorted(PARITY, reverse=True)[:5]
        terminalreporter.write_sep(
            "-", f"parity: {len(PARITY)} comparisons, worst relative errors"
        )
        for err, what in worst:
            terminalreporter.write_line(f"{err:.3g}  {what}")
