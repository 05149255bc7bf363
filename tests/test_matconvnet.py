"""MatConvNet networks: synthetic SimpleNN/DagNN files (v7 and v7.3), the two
real DnCNN files, and the published Set12 PSNR of DnCNN-S (sigma = 15)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import scipy.io
import torch
from conftest import assert_parity, import_generated, require_fixtures

from codegen import reference as R
from codegen.diagnostics import ConversionError
from codegen.inspection import inspect
from codegen.matfile import MatObject, load_variables, write_mat
from codegen.pipeline import convert
from codegen.verify import verify

RNG = np.random.default_rng(13)
DNCNN_S15 = "cszn__DnCNN__model__specifics__sigma=15.mat"
DNCNN_DAGNN = (
    "cszn__DnCNN__TrainingCodes__DnCNN_TrainingCodes_DagNN_v1.1__utilities__"
    "DnCNN-epoch-50.mat"
)


@pytest.fixture(autouse=True)
def _seed() -> None:
    """The same data whatever the test order."""
    RNG.bit_generator.state = np.random.default_rng(13).bit_generator.state


def f32(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


# --------------------------------------------------------------------------
# Writing MatConvNet structs as MATLAB does: v7 (scipy) and v7.3 (HDF5)


class Cell(list):
    """A MATLAB cell array (1×n)."""


class StructArray(list):
    """A MATLAB struct array (n×1), e.g. DagNN's saveobj layers/params/vars."""


def _v7(value: Any) -> Any:
    if isinstance(value, StructArray):
        keys = list(value[0])
        arr = np.empty((len(value), 1), dtype=[(k, object) for k in keys])
        for i, item in enumerate(value):
            for k in keys:
                arr[i, 0][k] = _v7(item[k])
        return arr
    if isinstance(value, list):
        arr = np.empty((1, len(value)), dtype=object)
        for i, item in enumerate(value):
            arr[0, i] = _v7(item)
        return arr
    if isinstance(value, dict):
        arr = np.empty((1, 1), dtype=[(k, object) for k in value])
        for k, v in value.items():
            arr[0, 0][k] = _v7(v)
        return arr
    if isinstance(value, bool):
        return np.array([[value]])
    if isinstance(value, (int, float)):
        return np.array([[float(value)]])
    return value


FIELDS = h5py.vlen_dtype(np.dtype("S1"))


def _names(keys: list[str]) -> np.ndarray:
    out = np.empty(len(keys), dtype=object)
    for i, k in enumerate(keys):
        out[i] = np.array(list(k), dtype="S1")
    return out


class _H5:
    """MATLAB's v7.3 layout: arrays transposed (column-major), text as
    uint16 'char', cells as object-reference datasets into /#refs#, structs
    as groups with MATLAB_fields, struct arrays as groups of reference
    datasets, empties as their dims with MATLAB_empty."""

    def __init__(self, fh: h5py.File) -> None:
        self.fh = fh
        self.refs = fh.create_group("#refs#")
        self.count = 0

    def _ref(self, value: Any) -> Any:
        self.count += 1
        name = f"r{self.count}"
        self.write(self.refs, name, value)
        return self.refs[name].ref

    def write(self, parent: h5py.Group, name: str, value: Any) -> None:
        if isinstance(value, StructArray):
            group = parent.create_group(name)
            keys = list(value[0])
            group.attrs["MATLAB_class"] = np.bytes_("struct")
            group.attrs.create("MATLAB_fields", _names(keys), dtype=FIELDS)
            for k in keys:
                refs = np.array(
                    [[self._ref(item[k])] for item in value], dtype=h5py.ref_dtype
                )
                group.create_dataset(k, data=refs)
            return
        if isinstance(value, dict):
            group = parent.create_group(name)
            group.attrs["MATLAB_class"] = np.bytes_("struct")
            group.attrs.create("MATLAB_fields", _names(list(value)), dtype=FIELDS)
            for k, v in value.items():
                self.write(group, k, v)
            return
        if isinstance(value, list):
            if not value:
                return self._empty(parent, name, "cell")
            refs = np.array([[self._ref(v)] for v in value], dtype=h5py.ref_dtype)
            ds = parent.create_dataset(name, data=refs)
            ds.attrs["MATLAB_class"] = np.bytes_("cell")
            return
        if isinstance(value, str):
            if not value:
                return self._empty(parent, name, "char")
            codes = np.array([[ord(c)] for c in value], dtype=np.uint16)
            ds = parent.create_dataset(name, data=codes)
            ds.attrs["MATLAB_class"] = np.bytes_("char")
            ds.attrs["MATLAB_int_decode"] = np.int32(2)
            return
        if isinstance(value, bool):
            ds = parent.create_dataset(
                name, data=np.array([[int(value)]], dtype=np.uint8)
            )
            ds.attrs["MATLAB_class"] = np.bytes_("logical")
            ds.attrs["MATLAB_int_decode"] = np.int32(1)
            return
        arr = np.asarray(
            value, dtype=np.float64 if isinstance(value, (int, float)) else None
        )
        if arr.ndim < 2:
            arr = arr.reshape(1, -1) if arr.ndim == 1 else arr.reshape(1, 1)
        if arr.size == 0:
            return self._empty(parent, name, "double")
        ds = parent.create_dataset(name, data=arr.transpose())
        ds.attrs["MATLAB_class"] = np.bytes_(
            {"float32": "single"}.get(str(arr.dtype), "double")
        )

    def _empty(self, parent: h5py.Group, name: str, cls: str) -> None:
        ds = parent.create_dataset(name, data=np.array([0, 0], dtype=np.uint64))
        ds.attrs["MATLAB_class"] = np.bytes_(cls)
        ds.attrs["MATLAB_empty"] = np.uint8(1)


def write_matconvnet(path: Path, variables: dict[str, Any], version: str) -> Path:
    if version == "v7":
        scipy.io.savemat(path, {k: _v7(v) for k, v in variables.items()})
        return path
    with h5py.File(path, "w", userblock_size=512) as fh:
        writer = _H5(fh)
        for name, value in variables.items():
            writer.write(fh, name, value)
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, HDF5 schema 1.00 .".ljust(116)
    with open(path, "r+b") as fh:
        fh.write(header + b"\x00" * 8 + b"\x00\x02IM")
    return path


# --------------------------------------------------------------------------
# Checking a conversion against the NumPy reference, layer by layer


def check_against_reference(
    tmp_path: Path, path: Path, size: tuple[int, int, int], var: str | None = None
) -> Any:
    out = tmp_path / "out"
    result = convert(path, out, force=True, var=var)
    record = load_variables(path, [result.network.variable])[result.network.variable]
    layers, pairs = R.matlab_graph(record)
    x = f32(*size, 2)
    spec = result.network.inputs[0]
    expected = R.run_graph(layers, pairs, {spec.layer: x})
    model = import_generated(out).load_model()
    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(3, 2, 0, 1)))
    with torch.no_grad():
        y = model(xt)
        acts = model.activations(xt)
    # float32 through up to 15 layers of random weights, against float64
    for name, act in acts.items():
        assert_parity(
            act.numpy(), R.to_torch(expected[name][0]), f"{path.name} {name}", 5e-5
        )
    port = result.network.outputs[0].port
    assert_parity(
        y.numpy(),
        R.to_torch(expected[port.layer][port.index]),
        f"{path.name} out",
        5e-5,
    )
    assert acts  # the layers were compared, not only the output
    return result


def conv_layer(name: str, kh: int, kw: int, c: int, f: int, **extra: Any) -> dict:
    return {
        "type": "conv",
        "name": name,
        "weights": [f32(kh, kw, c, f), f32(f, 1)],
        "stride": 1.0,
        "pad": 0.0,
        **extra,
    }


def simplenn() -> dict:
    """Every SimpleNN type, with the options that change numbers."""
    layers = [
        conv_layer(
            "c1",
            3,
            3,
            3,
            8,
            pad=np.array([[1.0, 2.0, 0.0, 1.0]]),
            stride=np.array([[1.0, 2.0]]),
        ),
        {"type": "relu", "name": "r1", "leak": 0.1},
        conv_layer("c2", 3, 3, 4, 8, pad=2.0, dilate=2.0),  # 2 groups
        {
            "type": "bnorm",
            "name": "bn",
            "weights": [
                f32(8, 1) + 1,
                f32(8, 1),
                np.c_[f32(8), 0.5 + RNG.random(8).astype(np.float32)],
            ],
        },
        {"type": "lrn", "name": "lrn4", "param": np.array([[4.0, 2.0, 0.3, 0.75]])},
        {
            "type": "normalize",
            "name": "lrn5",
            "param": np.array([[5.0, 1.0, 0.2, 0.5]]),
        },
        {
            "type": "pool",
            "name": "max",
            "method": "max",
            "pool": np.array([[3.0, 2.0]]),
            "stride": 2.0,
            "pad": np.array([[1.0, 0.0, 1.0, 1.0]]),
        },
        {
            "type": "pool",
            "name": "avg",
            "method": "avg",
            "pool": 3.0,
            "stride": 1.0,
            "pad": 1.0,
        },
        {
            "type": "pool",
            "name": "avg2",
            "method": "avg",
            "pool": 2.0,
            "stride": 1.0,
            "pad": np.array([[0.0, 1.0, 1.0, 0.0]]),
        },
        {
            "type": "convt",
            "name": "up",
            "weights": [f32(4, 4, 6, 8), f32(6, 1)],
            "upsample": 2.0,
            "crop": np.array([[1.0, 2.0, 0.0, 1.0]]),
            "numGroups": 1.0,
        },
        {
            "type": "convt",
            "name": "up3",
            "weights": [f32(3, 3, 2, 6), f32(6, 1)],
            "upsample": 1.0,
            "crop": 1.0,
            "numGroups": 3.0,
        },
        {"type": "dropout", "name": "drop", "rate": 0.3},
        {"type": "sigmoid", "name": "sig"},
        conv_layer("c3", 1, 1, 6, 5),
        {"type": "softmax", "name": "prob"},
        {"type": "softmaxloss", "name": "objective"},
    ]
    return {
        "layers": layers,
        "meta": {
            "normalization": {
                "averageImage": f32(3, 1),
                "imageSize": np.array([[16.0, 14.0, 3.0]]),
            },
            "classes": {
                "name": ["a", "b", "c", "d", "e"],
                "description": ["A", "B", "C", "D", "E"],
            },
        },
    }


def dagnn() -> dict:
    """Every DagNN block, saved as net.saveobj() writes it."""

    def layer(name, type_, inputs, outputs, params=(), **block):
        return {
            "name": name,
            "type": type_,
            "inputs": list(inputs),
            "outputs": list(outputs),
            "params": list(params),
            "block": block or {"opts": []},
        }

    params = StructArray(
        {"name": n, "value": v, "learningRate": 1.0, "weightDecay": 1.0}
        for n, v in [
            ("c1_f", f32(3, 3, 3, 6)),
            ("c1_b", f32(6, 1)),
            ("bn_g", f32(6, 1) + 1),
            ("bn_b", f32(6, 1)),
            ("bn_m", np.c_[f32(6), 0.5 + RNG.random(6).astype(np.float32)]),
            ("c2_f", f32(3, 3, 6, 6)),
            ("c3_f", f32(1, 1, 6, 6)),
            ("c3_b", f32(6, 1)),
            ("up_f", f32(4, 4, 4, 12)),
            ("up_b", f32(4, 1)),
            ("sc_w", f32(1, 1, 4)),
            ("sc_b", f32(1, 1, 4)),
        ]
    )
    layers = StructArray(
        [
            layer(
                "c1",
                "dagnn.Conv",
                ["data"],
                ["x1"],
                ["c1_f", "c1_b"],
                size=np.array([[3.0, 3, 3, 6]]),
                hasBias=True,
                pad=1.0,
                stride=1.0,
                dilate=1.0,
                opts=[],
            ),
            layer(
                "bn",
                "dagnn.BatchNorm",
                ["x1"],
                ["x2"],
                ["bn_g", "bn_b", "bn_m"],
                numChannels=6.0,
                epsilon=1e-4,
                opts=[],
            ),
            layer(
                "relu",
                "dagnn.ReLU",
                ["x2"],
                ["x3"],
                useShortCircuit=True,
                leak=0.0,
                opts=[],
            ),
            layer(
                "c2",
                "dagnn.Conv",
                ["x3"],
                ["x4"],
                ["c2_f"],
                size=np.array([[3.0, 3, 6, 6]]),
                hasBias=False,
                pad=1.0,
                stride=1.0,
                dilate=1.0,
                opts=[],
            ),
            layer(
                "c3",
                "dagnn.Conv",
                ["x3"],
                ["x5"],
                ["c3_f", "c3_b"],
                size=np.array([[1.0, 1, 6, 6]]),
                hasBias=True,
                pad=0.0,
                stride=1.0,
                dilate=1.0,
                opts=[],
            ),
            layer("sum", "dagnn.Sum", ["x3", "x4", "x5"], ["x6"]),
            layer("cat", "dagnn.Concat", ["x6", "x4"], ["x7"], dim=3.0, numInputs=2.0),
            layer(
                "pool",
                "dagnn.Pooling",
                ["x7"],
                ["x8"],
                method="avg",
                poolSize=np.array([[2.0, 2]]),
                pad=np.array([[0.0, 1, 0, 1]]),
                stride=2.0,
                opts=[],
            ),
            layer(
                "up",
                "dagnn.ConvTranspose",
                ["x8"],
                ["x9"],
                ["up_f", "up_b"],
                size=np.array([[4.0, 4, 4, 12]]),
                hasBias=True,
                upsample=2.0,
                crop=np.array([[1.0, 1, 1, 1]]),
                numGroups=1.0,
                opts=[],
            ),
            layer(
                "crop", "dagnn.Crop", ["x9", "x1"], ["x10"], crop=np.array([[1.0, 0.0]])
            ),
            layer(
                "scale",
                "dagnn.Scale",
                ["x10"],
                ["x11"],
                ["sc_w", "sc_b"],
                size=np.array([[1.0, 1, 4]]),
                hasBias=True,
            ),
            layer(
                "lrn",
                "dagnn.LRN",
                ["x11"],
                ["x12"],
                param=np.array([[3.0, 1.0, 0.1, 0.75]]),
            ),
            layer("drop", "dagnn.DropOut", ["x12"], ["x13"], rate=0.5, frozen=False),
            layer("sig", "dagnn.Sigmoid", ["x13"], ["x14"]),
            layer("prob", "dagnn.SoftMax", ["x14"], ["prediction"]),
            layer(
                "objective",
                "dagnn.Loss",
                ["prediction", "label"],
                ["obj"],
                loss="softmaxlog",
                ignoreAverage=False,
                opts=[],
            ),
            layer(
                "top1err",
                "dagnn.Loss",
                ["prediction", "label"],
                ["err"],
                loss="classerror",
                ignoreAverage=False,
                opts=[],
            ),
        ]
    )
    names = [
        "data",
        *(f"x{i}" for i in range(1, 15)),
        "prediction",
        "label",
        "obj",
        "err",
    ]
    return {
        "vars": StructArray({"name": n, "precious": False} for n in names),
        "params": params,
        "layers": layers,
        "meta": {
            "normalization": {
                "averageImage": f32(12, 10, 3),
                "imageSize": np.array([[12.0, 10, 3]]),
            }
        },
    }


@pytest.mark.parametrize("version", ["v7", "v7.3"])
def test_simplenn_every_type_matches_reference(tmp_path: Path, version: str) -> None:
    path = write_matconvnet(tmp_path / "net.mat", {"net": simplenn()}, version)
    result = check_against_reference(tmp_path, path, (16, 14, 3))
    code = result.code
    assert 'CLASSES = ("a", "b", "c", "d", "e")' in code
    assert "CLASS_DESCRIPTIONS" in code
    assert "nn.LeakyReLU(0.1" in code and "groups=2" in code
    assert "nn.ConvTranspose2d(6, 6, kernel_size=3, padding=1, groups=3)" in code
    assert "'objective' (matconvnet.softmaxloss" in " ".join(result.notes)
    assert "nn.CrossEntropyLoss" in code
    assert "x = x - self.input_mean" in code  # averageImage, in forward


@pytest.mark.parametrize("version", ["v7", "v7.3"])
def test_dagnn_every_block_matches_reference(tmp_path: Path, version: str) -> None:
    path = write_matconvnet(tmp_path / "net.mat", {"net": dagnn()}, version)
    result = check_against_reference(tmp_path, path, (12, 10, 3))
    net = result.network
    assert [s.layer for s in net.inputs] == ["data"]  # the label is training-only
    assert len(net.outputs) == 1  # objective and top-1 error share the prediction
    assert "softmaxlog (objective), classerror (top1err)" in " ".join(result.notes)
    assert "torch.cat" in result.code and "crop_like" in result.code


TRAINING_ONLY = [
    ("simplenn", "loss"),
    ("simplenn", "pdist"),
    ("dagnn", "dagnn.PDist"),
    ("dagnn", "dagnn.EuclideanLoss"),
]


@pytest.mark.parametrize(("form", "loss"), TRAINING_ONLY)
def test_training_only_layers_are_left_out(
    tmp_path: Path, form: str, loss: str
) -> None:
    if form == "simplenn":
        net = {"layers": [conv_layer("c", 3, 3, 2, 3, pad=1.0), {"type": loss}]}
    else:
        net = dagnn()
        net["layers"][-2]["type"] = loss
    path = write_matconvnet(tmp_path / "net.mat", {"net": net}, "v7")
    size = (9, 8, 2) if form == "simplenn" else (12, 10, 3)
    result = check_against_reference(tmp_path, path, size)
    assert "is left out" in " ".join(result.notes)
    assert len(result.network.outputs) == 1


def covered_classes() -> set[str]:
    """MatConvNet classes the parity tests here cover (test_registry_is_complete)."""
    covered = {"matconvnet.input"}
    covered |= {f"matconvnet.{layer['type']}" for layer in simplenn()["layers"]}
    covered |= {layer["type"] for layer in dagnn()["layers"]}
    covered |= {f"matconvnet.{t}" if f == "simplenn" else t for f, t in TRAINING_ONLY}
    return covered


@pytest.mark.parametrize("make", [simplenn, dagnn])
def test_v7_and_v73_give_the_same_bytes(tmp_path: Path, make: Any) -> None:
    """One network saved both ways: same model.py and weights, run after run."""
    net = make()
    outputs = []
    for version in ("v7", "v7.3", "v7.3"):
        path = write_matconvnet(tmp_path / f"{version}.mat", {"net": net}, version)
        result = convert(path, None)
        outputs.append((result.code.replace(path.name, "FILE"), result.weights))
    assert outputs[0] == outputs[1] == outputs[2]


def test_inspect_and_verify_read_matconvnet(tmp_path: Path) -> None:
    path = write_matconvnet(tmp_path / "net.mat", {"net": simplenn()}, "v7.3")
    report = inspect(path)
    assert report["class"] == "MatConvNet SimpleNN" and report["convertible"]
    assert report["layers"][0]["normalization"] == "zerocenter"
    assert report["layers"][1]["learnables"] == 3 * 3 * 3 * 8 + 8
    convert(path, tmp_path / "out")
    result = verify(path, tmp_path / "out")
    assert result.ok and len(result.comparisons) > 10


def test_pre_beta_simplenn_fields(tmp_path: Path) -> None:
    """Before 1.0-beta: filters/biases fields, normalization/classes at the top."""
    layer = conv_layer("c", 3, 3, 3, 2, pad=1.0)
    layer["filters"], layer["biases"] = layer.pop("weights")
    net = {
        "layers": [layer, {"type": "softmax"}],
        "normalization": {
            "averageImage": f32(5, 6, 3),
            "imageSize": np.array([[5.0, 6, 3]]),
        },
        "classes": {"name": ["cat", "dog"]},
    }
    path = write_matconvnet(tmp_path / "old.mat", {"net": net}, "v7")
    result = check_against_reference(tmp_path, path, (5, 6, 3))
    assert result.network.outputs[0].classes == ("cat", "dog")
    assert [n.name for n in result.network.nodes] == ["input", "c", "layer2"]


def test_dagnn_object_reads_its_saved_struct(tmp_path: Path) -> None:
    def plain(v: Any) -> Any:
        if isinstance(v, list):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    path = tmp_path / "obj.mat"
    write_mat(path, {"net": MatObject("dagnn.DagNN", plain(dagnn()))})
    assert convert(path, None).network.matlab_class == "MatConvNet DagNN"
    write_mat(path, {"net": MatObject("dagnn.DagNN", {"mode": "test"})})
    with pytest.raises(ConversionError, match=r"dagnn\.DagNN object") as err:
        convert(path, None)
    assert "net = net.saveobj()" in err.value.render()


def test_struct_that_is_not_a_network_keeps_its_message(tmp_path: Path) -> None:
    path = write_matconvnet(
        tmp_path / "s.mat", {"opts": {"layers": [1.0, 2.0], "lr": 0.1}}, "v7"
    )
    with pytest.raises(ConversionError, match="holds no network"):
        convert(path, None)
    with pytest.raises(ConversionError, match="'opts' is a struct, not a network"):
        convert(path, None, var="opts")


def test_var_picks_one_of_several_matconvnet_networks(tmp_path: Path) -> None:
    path = write_matconvnet(
        tmp_path / "two.mat", {"a": simplenn(), "b": dagnn()}, "v7.3"
    )
    with pytest.raises(ConversionError, match="holds 2 networks"):
        convert(path, None)
    assert convert(path, None, var="b").network.matlab_class == "MatConvNet DagNN"


def test_unknown_simplenn_type_is_a_stub_or_refused_by_name(tmp_path: Path) -> None:
    """With --strict, types without a handler are refused by layer and type."""
    net = {"layers": [conv_layer("c", 3, 3, 1, 2), {"type": "custom", "name": "mine"}]}
    path = write_matconvnet(tmp_path / "c.mat", {"net": net}, "v7")
    with pytest.raises(ConversionError) as err:
        convert(path, None, strict=True)
    assert "'mine' (matconvnet.custom)" in err.value.render()
    net["layers"][1] = {"type": "spnorm", "name": "sp", "param": np.ones((1, 4))}
    path = write_matconvnet(tmp_path / "s.mat", {"net": net}, "v7")
    with pytest.raises(ConversionError) as err:
        convert(path, None, strict=True)
    assert "'sp' (matconvnet.spnorm)" in err.value.render()


# --------------------------------------------------------------------------
# The real DnCNN files


@pytest.mark.parametrize("name", [DNCNN_S15, DNCNN_DAGNN])
def test_real_dncnn_matches_reference(tmp_path: Path, name: str) -> None:
    path = require_fixtures() / "real" / name
    check_against_reference(tmp_path, path, (20, 18, 1))


def read_png_grey(path: Path) -> np.ndarray:
    """An 8-bit greyscale, non-interlaced PNG (all of Set12) as uint8 H×W."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    pos, idat, header = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = header
    assert (depth, colour, interlace) == (8, 0, 0), f"{path.name}: not 8-bit grey"
    raw = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(
        height, width + 1
    )
    out = np.zeros((height, width), dtype=np.int64)
    prev = np.zeros(width, dtype=np.int64)
    for y in range(height):
        kind, row = raw[y, 0], raw[y, 1:].astype(np.int64)
        if kind == 0:
            cur = row
        elif kind == 1:  # Sub
            cur = np.cumsum(row) % 256
        elif kind == 2:  # Up
            cur = (row + prev) % 256
        else:  # Average, Paeth: sequential along the row
            cur = np.zeros(width, dtype=np.int64)
            for x in range(width):
                a = cur[x - 1] if x else 0
                b, c = prev[x], (prev[x - 1] if x else 0)
                if kind == 3:
                    pred = (a + b) // 2
                else:
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                cur[x] = (row[x] + pred) % 256
        out[y], prev = cur, cur
    return out.astype(np.uint8)


def im2uint8(x: np.ndarray) -> np.ndarray:
    """MATLAB's im2uint8 for floating images: round(255·x), saturated."""
    return np.clip(np.round(np.asarray(x, dtype=np.float64) * 255), 0, 255).astype(
        np.uint8
    )


def test_dncnn_s15_set12_reaches_published_psnr(tmp_path: Path) -> None:
    """DnCNN's demo protocol (../shared/fixtures/README.md); published 32.86 dB."""
    fixtures = require_fixtures()
    images = sorted((fixtures / "oracles" / "dncnn-set12").glob("*.png"))
    assert len(images) == 12
    out = tmp_path / "dncnn"
    convert(fixtures / "real" / DNCNN_S15, out)
    model = import_generated(out).load_model()
    rng = np.random.default_rng(0)
    psnrs = []
    for png in images:
        label = read_png_grey(png).astype(np.float64) / 255  # im2double
        noisy = (label + 15 / 255 * rng.standard_normal(label.shape)).astype(np.float32)
        with torch.no_grad():
            residual = model(torch.from_numpy(noisy)[None, None])[0, 0].numpy()
        output = noisy - residual
        mse = np.mean((im2uint8(label).astype(np.float64) - im2uint8(output)) ** 2)
        psnrs.append(10 * np.log10(255**2 / mse))
    mean = float(np.mean(psnrs))
    print(f"DnCNN-S sigma=15 on Set12: mean PSNR {mean:.3f} dB")
    assert abs(mean - 32.86) <= 0.05, f"mean PSNR {mean:.3f} dB, published 32.86 dB"
