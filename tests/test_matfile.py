"""The reader: mat-io's class fix, v7 and v7.3, and what it must refuse."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import matlab as M
import numpy as np
import pytest
from conftest import FIXTURES, require_fixtures

from codegen import untrusted
from codegen.diagnostics import ConversionError
from codegen.matfile import MatObject, list_variables, load_variables, write_mat
from codegen.pipeline import choose_variable, convert


def small_net() -> MatObject:
    g = np.random.default_rng(0)
    return M.series(
        [
            M.image_input("in", (5, 6, 2)),
            M.conv2d(
                "conv",
                g.standard_normal((3, 3, 2, 4)).astype(np.float32),
                np.ones(4),
                padding=(1, 1, 1, 1),
            ),
            M.relu("relu"),
            M.tanh("tanh"),
            M.sigmoid("sigmoid"),
            M.fully_connected(
                "fc", g.standard_normal((3, 120)).astype(np.float32), np.zeros(3)
            ),
            M.softmax("sm"),
            M.classification("out", ["a", "b", "c"]),
        ]
    )


def test_heterogeneous_layer_classes_on_a_real_file() -> None:
    """Without the fix every layer of this file reads as nnet.cnn.layer.Layer."""
    require_fixtures()
    name = "tuzkreekman__mimo-detect-and-decode__trainedNet.mat"
    entry = next(
        e
        for e in json.loads((FIXTURES / "real" / "MANIFEST.json").read_text())
        if e["file"] == name
    )
    expected = entry["networks"][0]["layer_classes"]
    layers = load_variables(FIXTURES / "real" / name, ["net"])["net"].fields["Layers"]
    assert [layer.classname for layer in layers] == expected
    assert {"sigmoidLayer", "nnet.cnn.layer.ReLULayer"} <= set(expected)


def test_every_real_network_reads_with_manifest_classes() -> None:
    require_fixtures()
    for entry in json.loads((FIXTURES / "real" / "MANIFEST.json").read_text()):
        for net in entry["networks"]:
            var = net["variable"]
            if "." in var or net["class"] not in (
                "SeriesNetwork",
                "layer array",
                "DAGNetwork",
                "nnet.cnn.LayerGraph",
            ):
                continue
            value = load_variables(FIXTURES / "real" / entry["file"], [var])[var]
            layers = value if isinstance(value, list) else value.fields["Layers"]
            assert [layer.classname for layer in layers] == net["layer_classes"], entry[
                "file"
            ]


@pytest.mark.parametrize("version", ["v7", "v7.3"])
def test_round_trip_keeps_shapes_and_classes(tmp_path: Path, version: str) -> None:
    net = small_net()
    write_mat(tmp_path / "n.mat", {"net": net}, version=version)
    assert list_variables(tmp_path / "n.mat")[0].classname == "SeriesNetwork"
    back = load_variables(tmp_path / "n.mat", ["net"])["net"]
    for a, b in zip(net.fields["Layers"], back.fields["Layers"], strict=True):
        assert a.classname == b.classname
        wa, wb = a.get("Weights"), b.get("Weights")
        if isinstance(wa, dict) and wa["Value"].size:
            assert wb["Value"].shape == wa["Value"].shape  # no reversed axes in v7.3
            np.testing.assert_array_equal(wb["Value"], wa["Value"])


def test_real_v73_file_keeps_matlab_dimension_order() -> None:
    """h5py reverses axes; mat-io must give back MATLAB's H×W×C×F kernels."""
    require_fixtures()
    name = "MATLAB-Community-Toolboxes-at-INCF__DeepInterpolation-MATLAB__pretrainedModels__pretrainedNetwork.mat"
    var = list_variables(FIXTURES / "real" / name)[0].name
    layers = load_variables(FIXTURES / "real" / name, [var])[var].fields["Layers"]
    convs = [
        layer for layer in layers if layer.classname.endswith("Convolution2DLayer")
    ]
    assert convs
    for conv in convs:
        kh, kw = (int(v) for v in np.ravel(conv.get("FilterSize")))
        weights = conv.get("Weights")["Value"]
        filters = int(np.ravel(conv.get("NumFilters"))[0])
        assert weights.shape[:2] == (kh, kw)
        assert (
            weights.size == kh * kw * weights.shape[2] * filters
        )  # MATLAB drops a trailing 1


# ---- refusals -------------------------------------------------------------------


def refusal(path: Path, var: str | None = None) -> str:
    with pytest.raises(ConversionError) as info:
        name = choose_variable(path, var)
        load_variables(path, [name])
    return info.value.render()


def test_not_a_mat_file(tmp_path: Path) -> None:
    (tmp_path / "net.mat").write_text("hello, this is text\n" * 20)
    assert "not a MATLAB .mat file" in refusal(tmp_path / "net.mat")


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "net.mat").write_bytes(b"")
    assert "not a MATLAB .mat file" in refusal(tmp_path / "net.mat")


def test_git_lfs_pointer(tmp_path: Path) -> None:
    (tmp_path / "net.mat").write_text(
        "version https://git-lfs.github.com/spec/v1\noid sha256:"
        + "0" * 64
        + "\nsize 332694246\n"
    )
    message = refusal(tmp_path / "net.mat")
    assert "Git LFS pointer" in message and "git lfs pull" in message


def test_real_lfs_pointer() -> None:
    require_fixtures()
    path = (
        FIXTURES
        / "real"
        / "4ri4Slr__CIFAR-10-Classification-with-the-Matlab-Deep-Learning-Toolbox__net.mat"
    )
    assert "Git LFS pointer" in refusal(path)


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.95])
def test_truncated_file(tmp_path: Path, fraction: float) -> None:
    write_mat(tmp_path / "full.mat", {"net": small_net()})
    data = (tmp_path / "full.mat").read_bytes()
    (tmp_path / "net.mat").write_bytes(data[: int(len(data) * fraction)])
    assert "truncated" in refusal(tmp_path / "net.mat")


def test_references_without_object_data(tmp_path: Path) -> None:
    """A v7 file cut before its subsystem: mat-io returns raw uint32 references."""
    write_mat(tmp_path / "full.mat", {"net": small_net()})
    data = bytearray((tmp_path / "full.mat").read_bytes())
    offset = int.from_bytes(data[116:124], "little")
    assert offset > 0
    stripped = data[:offset]
    stripped[116:124] = bytes(8)
    (tmp_path / "net.mat").write_bytes(bytes(stripped))
    assert "no object data" in refusal(tmp_path / "net.mat")


def test_shallow_network_object(tmp_path: Path) -> None:
    from matio import save_to_mat
    from matio.utils.matclass import MatlabObject

    struct = np.empty((1, 1), dtype=[("numInputs", object), ("layers", object)])
    struct[0, 0]["numInputs"] = np.array([[1.0]])
    struct[0, 0]["layers"] = np.empty((0, 0))
    save_to_mat(
        str(tmp_path / "net.mat"), {"net": MatlabObject(struct, classname="network")}
    )
    message = refusal(tmp_path / "net.mat")
    assert "shallow neural network" in message and "'net'" in message


def test_no_network(tmp_path: Path) -> None:
    write_mat(tmp_path / "net.mat", {"data": np.ones((3, 3)), "labels": ["a", "b"]})
    message = refusal(tmp_path / "net.mat")
    assert "holds no network" in message and "'data' (double)" in message


def test_several_networks_need_var(tmp_path: Path) -> None:
    net = small_net()
    write_mat(
        tmp_path / "net.mat",
        {"net": net, "layers": list(net.fields["Layers"]), "x": np.ones(2)},
    )
    message = refusal(tmp_path / "net.mat")
    assert (
        "2 networks" in message
        and "'net' (SeriesNetwork)" in message
        and "--var" in message
    )
    assert choose_variable(tmp_path / "net.mat", "layers") == "layers"


def test_unknown_var(tmp_path: Path) -> None:
    write_mat(tmp_path / "net.mat", {"net": small_net(), "x": np.ones(2)})
    assert "no variable 'nett'" in refusal(tmp_path / "net.mat", "nett")
    assert "not a network" in refusal(tmp_path / "net.mat", "x")


def test_big_arrays_come_back_from_the_reader_child_intact(tmp_path: Path) -> None:
    """Arrays of 64 KiB and more travel out of band: values, dtype, shape and
    MATLAB's column-major layout must be what was written."""
    g = np.random.default_rng(1)
    big = g.standard_normal((300, 70)).astype(np.float32)  # 84 000 bytes
    small = g.standard_normal((3, 4))
    ints = np.arange(40_000, dtype=np.int32).reshape(200, 200)
    write_mat(tmp_path / "a.mat", {"s": {"big": big, "small": small, "ints": ints}})
    back = load_variables(tmp_path / "a.mat", ["s"])["s"]
    for key, value in (("big", big), ("small", small), ("ints", ints)):
        assert back[key].dtype == value.dtype and back[key].shape == value.shape
        np.testing.assert_array_equal(back[key], value)
        assert back[key].flags.writeable


# --------------------------------------------------------------------------
# One read per conversion, overlapping the converter's own imports


def _count_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = untrusted.run_isolated

    def counting(path: Path, fn: Any, *args: Any, **kw: Any) -> Any:
        calls.append(fn.__name__)
        return real(path, fn, *args, **kw)

    monkeypatch.setattr(untrusted, "run_isolated", counting)
    return calls


def test_a_conversion_reads_the_file_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_mat(tmp_path / "n.mat", {"net": small_net(), "opts": {"epochs": 3.0}})
    calls = _count_reads(monkeypatch)
    convert(tmp_path / "n.mat", tmp_path / "out")
    assert calls == ["_list_and_load"]


def test_a_matconvnet_conversion_reads_the_file_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No Toolbox network: every struct is read with the listing, and the
    one that is a MatConvNet network is chosen from them."""
    from test_matconvnet import simplenn, write_matconvnet

    path = write_matconvnet(
        tmp_path / "n.mat", {"opts": {"epochs": 3.0}, "net": simplenn()}, "v7"
    )
    calls = _count_reads(monkeypatch)
    result = convert(path, tmp_path / "out")
    assert calls == ["_list_and_load"]
    assert result.network.variable == "net"


def test_imports_meanwhile_stop_when_the_child_is_done(tmp_path: Path) -> None:
    write_mat(tmp_path / "n.mat", {"net": small_net()})
    ran: list[str] = []

    def slow_step() -> None:
        time.sleep(1.0)  # the child scans a 2 kB file meanwhile
        ran.append("slow")

    with untrusted.meanwhile(slow_step, lambda: ran.append("next")):
        assert untrusted.run_isolated(tmp_path / "n.mat", str, 5) == "5"
    assert ran == ["slow"]  # the child was done: "next" was skipped
    with untrusted.meanwhile(lambda: ran.append("a"), lambda: ran.append("b")):
        untrusted.run_isolated(tmp_path / "n.mat", time.sleep, 2.0)
    assert ran == ["slow", "a", "b"]  # the child was busy: both ran


def test_converting_into_a_new_folder_imports_neither_libcst_nor_matio(
    tmp_path: Path,
) -> None:
    """libcst only merges into an existing model.py; mat-io runs in the child."""
    write_mat(tmp_path / "n.mat", {"net": small_net()})
    code = (
        "import sys; from codegen.pipeline import convert; "
        f"convert({str(tmp_path / 'n.mat')!r}, {str(tmp_path / 'out')!r}); "
        "print(sorted(m for m in ('libcst', 'matio', 'torch') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.split("\n")[-2] == "['torch']"
