"""Progress lines: one per stage on a terminal's stderr, none with --quiet or when piped."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from test_matfile import small_net

from codegen import cli, progress
from codegen.matfile import write_mat


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("tty", "quiet", "shown"),
    [(True, False, True), (True, True, False), (False, False, False)],
)
def test_progress_only_on_a_terminal_without_quiet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tty: bool, quiet: bool, shown: bool
) -> None:
    write_mat(tmp_path / "net.mat", {"net": small_net()})
    err = _Terminal() if tty else io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    argv = ["convert", str(tmp_path / "net.mat"), "-o", str(tmp_path / "out")]
    try:
        assert cli.main([*argv, "--quiet"] if quiet else argv) == 0
    finally:
        progress.disable()
    stages = [line.split()[1] for line in err.getvalue().splitlines()]
    expected = ["read", "parse", "render", "check", "weights", "format", "write"]
    assert stages == (expected if shown else [])
