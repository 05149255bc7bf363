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

    def serialize(self, near: os.PathLike[str] | str | None = None) -> Serialized:
        """The archive, in an unnamed file on ``near``'s filesystem if given."""
        return Serialized(self, near)

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


def _scratch(near: os.PathLike[str] | str | None) -> tuple[IO[bytes], bool]:
    """An unnamed file for the archive, and whether it can be linked into place.

    On the output folder's filesystem (the folder, or the nearest one above
    it that exists) as O_TMPFILE without O_EXCL, the write links a 553 MB
    archive instead of copying it (1 s). Elsewhere: an ordinary temporary
    file. Either way nothing named is left behind.
    """
    flag = getattr(os, "O_TMPFILE", 0)
    if near is not None and flag:
        folder = os.path.abspath(near)
        while not os.path.isdir(folder) and os.path.dirname(folder) != folder:
            folder = os.path.dirname(folder)
        try:
            fd = os.open(folder, flag | os.O_RDWR, 0o600)
        except OSError:
            pass
        else:
            return open(fd, "w+b"), True
    return tempfile.TemporaryFile(), False


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

    def __init__(
        self, weights: Weights, near: os.PathLike[str] | str | None = None
    ) -> None:
        self.file, self.linkable = _scratch(near)
        try:
            weights.write(self.file)
        except (OSError, RuntimeError):
            if not self.linkable:
                raise
            # The output's filesystem is full or failing: serialize where
            # temporary files go; writing the output says what is wrong.
            self.file.close()
            self.file, self.linkable = _scratch(None)
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

    def adopt(self, folder: os.PathLike[str] | str) -> int:
        """A new descriptor of this very file when ``folder`` can link it into
        place (an O_TMPFILE file on its filesystem): writing the archive then
        costs no copy. -1 when it has to be copied."""
        if not self.linkable:
            return -1
        self.file.flush()
        fd = self.file.fileno()
        try:
            if os.fstat(fd).st_dev != os.stat(folder).st_dev:
                return -1
            umask = os.umask(0)
            os.umask(umask)
            os.fchmod(fd, 0o666 & ~umask)  # what a file created there would get
            return os.dup(fd)
        except OSError:
            return -1

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
