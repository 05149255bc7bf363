"""The parallel chunk reader gives exactly what h5py gives, or steps aside."""

from __future__ import annotations

import pickle
import zlib
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import FIXTURES, require_fixtures

from codegen import chunks, matfile
from codegen.diagnostics import ConversionError
from codegen.matfile import list_variables, load_variables, write_mat


def _dataset(tmp_path: Path, data: np.ndarray, **options: object) -> h5py.Dataset:
    f = h5py.File(tmp_path / "d.h5", "w")
    return f.create_dataset("d", data=data, **options)


@pytest.mark.parametrize(
    ("shape", "chunk", "dtype"),
    [
        ((300, 70), (64, 16), "<f4"),  # edge chunks in both dimensions
        ((5, 7, 3, 11), (2, 7, 3, 4), ">f8"),  # big-endian, 4-D
        ((1000,), (333,), "<i2"),
    ],
)
def test_equals_h5py(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shape, chunk, dtype
) -> None:
    monkeypatch.setattr(chunks, "MIN_BYTES", 0)
    data = np.random.default_rng(0).standard_normal(shape) * 100
    ds = _dataset(tmp_path, data.astype(dtype), chunks=chunk, compression="gzip")
    got = chunks.read(ds)
    assert got is not None
    assert got.dtype == ds.dtype and got.shape == ds.shape
    np.testing.assert_array_equal(got, ds[()])


def test_a_chunk_stored_unfiltered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HDF5 may store a chunk raw (filter mask bit 0) when it would not shrink."""
    monkeypatch.setattr(chunks, "MIN_BYTES", 0)
    ds = _dataset(tmp_path, np.zeros((8, 8), "<f4"), chunks=(4, 8), compression="gzip")
    raw = np.arange(32, dtype="<f4").reshape(4, 8)
    ds.id.write_direct_chunk((4, 0), raw.tobytes(), filter_mask=1)
    np.testing.assert_array_equal(chunks.read(ds), ds[()])
    np.testing.assert_array_equal(chunks.read(ds)[4:], raw)


def test_a_damaged_chunk_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(chunks, "MIN_BYTES", 0)
    ds = _dataset(tmp_path, np.ones((8, 8), "<f4"), chunks=(4, 8), compression="gzip")
    ds.id.write_direct_chunk((0, 0), zlib.compress(bytes(64)), filter_mask=0)  # half
    with pytest.raises(ValueError, match="holds 64 bytes, not 128"):
        chunks.read(ds)
    ds.id.write_direct_chunk((0, 0), zlib.compress(bytes(4096)), filter_mask=0)
    with pytest.raises(ValueError, match="inflates past its size"):
        chunks.read(ds)


@pytest.mark.parametrize(
    "options",
    [
        {"chunks": (4, 8), "compression": "gzip", "shuffle": True},
        {"chunks": (4, 8), "compression": "lzf"},
        {},  # contiguous
    ],
)
def test_other_layouts_are_left_to_h5py(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, options
) -> None:
    monkeypatch.setattr(chunks, "MIN_BYTES", 0)
    ds = _dataset(tmp_path, np.ones((8, 8), "<f4"), **options)
    assert chunks.read(ds) is None


def test_unallocated_chunks_are_left_to_h5py(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(chunks, "MIN_BYTES", 0)
    f = h5py.File(tmp_path / "d.h5", "w")
    ds = f.create_dataset(
        "d", (8, 8), "<f4", chunks=(4, 8), compression="gzip", fillvalue=7
    )
    ds[:4] = 1
    assert chunks.read(ds) is None


def test_small_datasets_are_left_to_h5py(tmp_path: Path) -> None:
    ds = _dataset(tmp_path, np.ones((8, 8), "<f4"), chunks=(4, 8), compression="gzip")
    assert chunks.read(ds) is None


def _real_v73() -> list[Path]:
    require_fixtures()
    return [p for p in sorted((FIXTURES / "real").glob("*.mat")) if h5py.is_hdf5(p)]


def test_real_v73_networks_read_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """MATLAB's own files (deflate-only chunks): with every dataset through
    the parallel reader, the decoded records pickle to the same bytes."""
    files = _real_v73()
    assert len(files) >= 4
    used = []
    real_read = chunks.read

    def counting(ds: h5py.Dataset) -> np.ndarray | None:
        out = real_read(ds)
        used.append(out is not None)
        return out

    matfile._import_reader()
    for path in files:
        names = [v.name for v in list_variables(path)]
        expected = matfile._load(path, names)
        with monkeypatch.context() as m:
            m.setattr(chunks, "MIN_BYTES", 0)
            m.setattr(chunks, "read", counting)
            got = matfile._load(path, names)
        _assert_same(got, expected, path.name)
    assert sum(used) >= 40


def _assert_same(got: object, expected: object, where: str) -> None:
    """Same types, and arrays with the same dtype, shape, strides and bytes."""
    assert type(got) is type(expected), where
    if isinstance(expected, np.ndarray):
        assert isinstance(got, np.ndarray)
        assert got.dtype == expected.dtype, where
        assert got.shape == expected.shape and got.strides == expected.strides, where
        assert pickle.dumps(got) == pickle.dumps(expected), where
    elif isinstance(expected, dict):
        assert isinstance(got, dict) and list(got) == list(expected), where
        for key in expected:
            _assert_same(got[key], expected[key], f"{where}/{key}")
    elif isinstance(expected, list | tuple):
        assert isinstance(got, list | tuple) and len(got) == len(expected), where
        for i, (g, e) in enumerate(zip(got, expected, strict=True)):
            _assert_same(g, e, f"{where}[{i}]")
    elif hasattr(expected, "__dict__"):
        _assert_same(vars(got), vars(expected), f"{where}.{type(expected).__name__}")
    else:
        assert got == expected, where


@pytest.mark.parametrize(
    ("garbage", "says"),
    [
        (b"not zlib at all", "while decompressing data"),
        (zlib.compress(bytes(8)), "holds 8 bytes"),
    ],
)
def test_a_damaged_chunk_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, garbage: bytes, says: str
) -> None:
    """Through the reader child: a clear refusal naming the file."""
    monkeypatch.setattr(chunks, "MIN_BYTES", 0)
    path = tmp_path / "net.mat"
    write_mat(path, {"s": {"w": np.ones((1000, 4), np.float32)}}, version="v7.3")
    with h5py.File(path, "r+") as f:
        dataset = f["s/w"]
        assert dataset.chunks and dataset.compression == "gzip"
        dataset.id.write_direct_chunk((0, 0), garbage, filter_mask=0)
    with pytest.raises(ConversionError) as info:
        load_variables(path, ["s"])
    text = info.value.render()
    assert "net.mat" in text and "corrupt" in text and says in text
    assert "internal error" not in text.lower()
