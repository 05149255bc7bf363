"""The wheel ships the templates and works outside the checkout; CI runs the
README's test command."""

from __future__ import annotations

import re
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

from conftest import REPO


def readme_commands() -> list[str]:
    return re.findall(r"```bash\n(.+?)\n```", (REPO / "README.md").read_text())


def test_ci_runs_the_readme_test_command() -> None:
    commands = readme_commands()
    assert len(commands) >= 2
    assert "pytest" in commands[1]
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert commands[1] in ci


def test_readme_example_command_uses_a_shipped_file() -> None:
    first = readme_commands()[0]
    mat = re.search(r"mat2torch convert (\S+)", first).group(1)
    assert (REPO / mat).is_file()


def test_wheel_installs_and_converts_outside_the_checkout(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(REPO),
            "--no-deps",
            "-q",
            "-w",
            str(wheels),
        ],
        check=True,
        capture_output=True,
    )
    wheel = next(wheels.glob("mat2torch-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "codegen/templates/model.py.jinja" in names
    assert "codegen/templates/layers/module.jinja" in names
    assert "codegen/templates/helpers/same_padding.py" in names

    # A fresh venv that borrows only the dependencies (torch, numpy, ...) of
    # this one: a plain path entry, so the editable checkout is not visible.
    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True
    )
    py = venv / "bin" / "python"
    site = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(site) / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(py),
            "install",
            "--no-deps",
            "-q",
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    work = tmp_path / "elsewhere"
    work.mkdir()
    where = subprocess.run(
        [str(py), "-c", "import codegen; print(codegen.__file__)"],
        capture_output=True,
        text=True,
        cwd=work,
    )
    assert str(venv) in where.stdout, where.stdout + where.stderr
    proc = subprocess.run(
        [
            str(venv / "bin" / "mat2torch"),
            "convert",
            str(REPO / "examples" / "digits_cnn.mat"),
            "-o",
            "out",
        ],
        capture_output=True,
        text=True,
        cwd=work,
    )
    assert proc.returncode == 0, proc.stderr
    golden = REPO / "generated_examples" / "digits_cnn"
    for name in ("model.py", "weights.pt"):
        assert (work / "out" / name).read_bytes() == (golden / name).read_bytes()
