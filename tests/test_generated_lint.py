"""Generated files pass the strictest review a PyTorch project would apply:
ruff --select ALL (tests/lint_generated.py lists the waived rules), mypy
--strict, black, and a forward with no store that nothing reads.

Covers every golden, every helper module and the conversion of every real
network in ../shared/fixtures/real.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import require_fixtures
from lint_generated import (
    REPO,
    goldens,
    mypy_findings,
    real_conversions,
    ruff_findings,
)

from codegen.format import format_source
from codegen.plan import unread_stores


@pytest.mark.parametrize("name", sorted(goldens()))
def test_golden_passes_ruff_all_and_black(name: str) -> None:
    code = goldens()[name]
    assert ruff_findings(code) == []
    assert format_source(code) == code  # black once is enough: it is stable


def test_goldens_and_helpers_pass_mypy_strict(tmp_path: Path) -> None:
    found = mypy_findings(goldens(), tmp_path)
    assert {k: v for k, v in found.items() if v} == {}
    helpers = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-error-summary",
            "--cache-dir",
            str(tmp_path / ".mypy_cache"),
            "templates/helpers",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert helpers.stdout == "", helpers.stdout


def test_checks_can_fail(tmp_path: Path) -> None:
    """The same checks flag what the old generator wrote."""
    code = goldens()["golden_digits_cnn"]
    old = code.replace("def from_matlab(array: object)", "def from_matlab(array)")
    assert any("ANN001" in f for f in ruff_findings(old))
    assert mypy_findings({"old": old}, tmp_path)["old"]


def test_every_real_conversion_is_clean(tmp_path: Path) -> None:
    require_fixtures()
    files, dead = {}, {}
    for name, result in real_conversions():
        files[name] = result.code
        if unread_stores(result.plan):
            dead[name] = unread_stores(result.plan)
        assert format_source(result.code) == result.code
    assert len(files) >= 60  # 64 of the corpus networks convert today
    assert dead == {}
    ruff = {name: ruff_findings(code) for name, code in files.items()}
    assert {k: v for k, v in ruff.items() if v} == {}
    mypy = mypy_findings(files, tmp_path)
    assert {k: v for k, v in mypy.items() if v} == {}
