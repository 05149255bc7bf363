"""The weights file: a torch.save'd state_dict, byte-identical across runs."""

from __future__ import annotations

import io
import os
import sys
import tempfile
from typing import IO, Any

import numpy as np


class Weights:
    """The state_dict to save, written straight into the output file.

    Holding the arrays rather than the serialized bytes keeps one copy of
    the weights in memory instead of two (the archive is streamed to disk).
    Writing to a file object, not a path, keeps the archive's inner folder
    name fixed ("archive") whatever the output file is called.
    """

    def __init__(self, state: dict[str, np.ndarray]) -> None:
        self.tensors = _tensors(state)

    def write(self, fh: IO[bytes]) -> None:
        import torch

        torch.save(self.tensors, fh)

    def __bytes__(self) -> bytes:
        buffer = io.BytesIO()
        self.write(buffer)
        return buffer.getvalue()

    def serialize(self) -> Serialized:
        return Serialized(self)

    @property
    def nbytes(self) -> int:
        return sum(t.nbytes for t in self.tensors.values())


# Arrays this big are laid out by torch, which copies on every core: a
# transposed 411 MB fully connected weight takes 0.5 s instead of 0.75 s.
BIG = 1 << 24


def contiguous(value: np.ndarray) -> np.ndarray:
    """``value`` in C order: a big strided one copied by torch when the
    conversion has imported it (``inspect`` does not)."""
    torch = sys.modules.get("torch")
    if torch and value.nbytes >= BIG and value.ndim and not value.flags.c_contiguous:
        return torch.from_numpy(value).contiguous().numpy()  # type: ignore[no-any-return]
    return np.ascontiguousarray(value)


def _tensors(state: dict[str, np.ndarray]) -> dict[str, Any]:
    import torch

    tensors = {}
    seen: set[int] = set()
    for key in sorted(state):
        value = contiguous(state[key])
        if value.dtype.kind == "f":
            value = value.astype(np.float32, copy=False)  # no copy of float32
        address = value.__array_interface__["data"][0]
        # The archive records strides and shares storages that alias: copy
        # those so the bytes depend on the values only.
        if value.strides != _c_strides(value) or address in seen:
            value = value.copy()
        seen.add(value.__array_interface__["data"][0])
        tensors[key] = torch.from_numpy(value)
    return tensors


def _c_strides(value: np.ndarray) -> tuple[int, ...]:
    """Row-major strides of ``value``'s shape, size-1 dimensions included."""
    strides, step = [], value.itemsize
    for n in reversed(value.shape):
        strides.append(step)
        step *= n
    return tuple(reversed(strides))


class Serialized:
    """The weights file's bytes, held in an unnamed temporary file.

    A VGG-16 archive is 553 MB: kept in memory next to the arrays it was
    made from, it would set the conversion's peak memory. It compares equal
    to ``bytes`` (or another ``Serialized``) with the same content.
    """

    CHUNK = 1 << 22

    def __init__(self, weights: Weights) -> None:
        self.file = tempfile.TemporaryFile()
        weights.write(self.file)
        self.file.flush()
        self.size = self.file.tell()

    def __len__(self) -> int:
        return self.size

    def __bytes__(self) -> bytes:
        return self.reader().read()

    def reader(self) -> IO[bytes]:
        """The file, from its start (for torch.load)."""
        self.file.seek(0)
        return self.file

    def chunks(self) -> Any:
        fh = self.reader()
        while chunk := fh.read(self.CHUNK):
            yield chunk

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Serialized):
            other = bytes(other)
        if not isinstance(other, (bytes, bytearray, memoryview)):
            return NotImplemented
        view = memoryview(other)
        if view.nbytes != self.size:
            return False
        offset = 0
        for chunk in self.chunks():
            if view[offset : offset + len(chunk)] != chunk:
                return False
            offset += len(chunk)
        return True

    __hash__ = None  # type: ignore[assignment]

    def same_as_file(self, path: os.PathLike[str] | str) -> bool:
        """Whether ``path`` holds these bytes (compared chunk by chunk)."""
        if os.path.getsize(path) != self.size:
            return False
        with open(path, "rb") as fh:
            return all(chunk == fh.read(len(chunk)) for chunk in self.chunks())

    def write_to(self, fd: int) -> None:
        """Copy the bytes into the open file ``fd`` (in the kernel where it can)."""
        src = self.reader()
        src.flush()
        offset = 0
        try:
            while offset < self.size:
                n = os.copy_file_range(src.fileno(), fd, self.size - offset, offset)
                if n == 0:
                    break
                offset += n
        except (AttributeError, OSError):
            pass
        if offset < self.size:  # no copy_file_range: through user space
            src.seek(offset)
            while chunk := src.read(self.CHUNK):
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view) :]
