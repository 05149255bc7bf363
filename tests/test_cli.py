"""The command line: exit codes, messages, no tracebacks, nothing half-written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import matlab as M
import numpy as np
import pytest
from test_matfile import small_net

from codegen import cli
from codegen.matfile import write_mat


def mat2torch(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "codegen", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def assert_clean_failure(
    proc: subprocess.CompletedProcess, code: int, *words: str
) -> None:
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    for word in words:
        assert word in proc.stderr, proc.stderr


def test_convert_success(tmp_path: Path) -> None:
    write_mat(tmp_path / "net.mat", {"net": small_net()})
    proc = mat2torch("convert", str(tmp_path / "net.mat"), "-o", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    assert "Converted 'net' (SeriesNetwork, 8 layers)" in proc.stdout
    assert (tmp_path / "out" / "model.py").is_file() and (
        tmp_path / "out" / "weights.pt"
    ).is_file()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "mat2torch-base.json",
        "model.py",
        "weights.pt",
    ]


def test_class_name_option(tmp_path: Path) -> None:
    write_mat(tmp_path / "net.mat", {"net": small_net()})
    proc = mat2torch(
        "convert",
        str(tmp_path / "net.mat"),
        "-o",
        str(tmp_path / "out"),
        "--class-name",
        "FaceNet",
    )
    assert proc.returncode == 0, proc.stderr
    assert "class FaceNet(nn.Module):" in (tmp_path / "out" / "model.py").read_text()


def test_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    write_mat(tmp_path / "net.mat", {"net": small_net()})
    out = tmp_path / "out"
    out.mkdir()
    (out / "model.py").write_text("# my edits\n")
    proc = mat2torch("convert", str(tmp_path / "net.mat"), "-o", str(out))
    assert_clean_failure(proc, 1, "exists already", "--force")
    assert (out / "model.py").read_text() == "# my edits\n"
    proc = mat2torch("convert", str(tmp_path / "net.mat"), "-o", str(out), "--force")
    assert proc.returncode == 0
    assert "class Net(nn.Module)" in (out / "model.py").read_text()


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda p: p.write_text("not a mat file\n" * 10), ["not a MATLAB .mat file"]),
        (
            lambda p: p.write_text(
                "version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 9\n"
            ),
            ["Git LFS pointer"],
        ),
        (
            lambda p: write_mat(p, {"x": np.ones(3)}),
            ["holds no network", "'x' (double)"],
        ),
        (lambda p: None, ["no such file"]),
    ],
    ids=["text", "lfs", "no-network", "missing"],
)
def test_bad_inputs(tmp_path: Path, make, words) -> None:
    path = tmp_path / "net.mat"
    make(path)
    proc = mat2torch("convert", str(path), "-o", str(tmp_path / "out"))
    assert_clean_failure(proc, 1, *words)
    assert not (tmp_path / "out").exists()


def test_truncated_file(tmp_path: Path) -> None:
    write_mat(tmp_path / "full.mat", {"net": small_net()})
    data = (tmp_path / "full.mat").read_bytes()
    (tmp_path / "net.mat").write_bytes(data[: len(data) // 2])
    proc = mat2torch("convert", str(tmp_path / "net.mat"), "-o", str(tmp_path / "out"))
    assert_clean_failure(proc, 1, "is truncated")


def test_several_networks(tmp_path: Path) -> None:
    net = small_net()
    write_mat(tmp_path / "net.mat", {"net": net, "layers": list(net.fields["Layers"])})
    proc = mat2torch("convert", str(tmp_path / "net.mat"), "-o", str(tmp_path / "out"))
    assert_clean_failure(proc, 1, "2 networks", "'layers'", "'net'", "--var")
    proc = mat2torch(
        "convert",
        str(tmp_path / "net.mat"),
        "-o",
        str(tmp_path / "out"),
        "--var",
        "layers",
    )
    assert proc.returncode == 0, proc.stderr


def test_every_unsupported_layer_in_one_message(tmp_path: Path) -> None:
    custom = M.plain_layer("ignored", "mine")
    custom = type(custom)("myScalingLayer", custom.fields)
    other = type(custom)("anotherCustomLayer", {**custom.fields, "Name": "theirs"})
    unknown = M.layer("SpaceToDepthLayer", "s2d")
    net = M.series(
        [M.image_input("in", (4, 4, 1)), custom, M.relu("r"), other, unknown]
    )
    write_mat(tmp_path / "net.mat", {"net": net})
    proc = mat2torch(
        "convert", str(tmp_path / "net.mat"), "-o", str(tmp_path / "out"), "--strict"
    )
    assert_clean_failure(
        proc,
        1,
        "3 layer(s) cannot be converted",
        "'mine' (myScalingLayer)",
        "'theirs' (anotherCustomLayer)",
        "'s2d' (nnet.cnn.layer.SpaceToDepthLayer)",
        "user-defined layer",
        "Nothing was written",
    )
    assert not (tmp_path / "out").exists()


def test_failure_leaves_previous_outputs_alone(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_mat(tmp_path / "good.mat", {"net": small_net()})
    assert (
        mat2torch("convert", str(tmp_path / "good.mat"), "-o", str(out)).returncode == 0
    )
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    bad = M.series(
        [M.image_input("in", (4, 4, 1)), M.layer("SpaceToDepthLayer", "s2d")]
    )
    write_mat(tmp_path / "bad.mat", {"net": bad})
    proc = mat2torch(
        "convert", str(tmp_path / "bad.mat"), "-o", str(out), "--force", "--strict"
    )
    assert_clean_failure(proc, 1, "SpaceToDepthLayer")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["convert"],
        ["convert", "net.mat"],
        ["frobnicate"],
        ["convert", "net.mat", "-o", "x", "--bogus"],
    ],
)
def test_usage_errors_exit_2(args: list[str], tmp_path: Path) -> None:
    proc = mat2torch(*args, cwd=tmp_path)
    assert proc.returncode == 2
    assert "usage:" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("name", ["1Net", "my-net", "class", "forward", "Path"])
def test_bad_class_name_is_a_usage_error(tmp_path: Path, name: str) -> None:
    write_mat(tmp_path / "net.mat", {"net": small_net()})
    proc = mat2torch(
        "convert",
        str(tmp_path / "net.mat"),
        "-o",
        str(tmp_path / "out"),
        "--class-name",
        name,
    )
    assert proc.returncode == 2
    assert "--class-name" in proc.stderr and "Traceback" not in proc.stderr


def test_internal_errors_do_not_show_tracebacks(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    def boom(*args, **kwargs):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr("codegen.pipeline.convert", boom)
    monkeypatch.delenv("MAT2TORCH_DEBUG", raising=False)
    assert (
        cli.main(["convert", str(tmp_path / "x.mat"), "-o", str(tmp_path / "out")]) == 1
    )
    err = capsys.readouterr().err
    assert "internal error" in err and "simulated bug" in err and "Traceback" not in err


def test_console_script_is_installed() -> None:
    import shutil

    exe = shutil.which("mat2torch", path=str(Path(sys.executable).parent))
    assert exe, "the mat2torch console script is not installed next to this Python"
    proc = subprocess.run([exe, "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "convert" in proc.stdout
