"""Byte-level mutants: what a bad download, disk or text-mode copy does to a file.

Every operator is a pure function of the original bytes and a few integers,
so a Hypothesis example (or a long-mode seed) names its mutant exactly.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable

HEADER = 128
HDF5_OFFSET = 512
# Values that break size and class fields in interesting ways.
SPECIAL_U32 = (0, 1, 2, 7, 8, 9, 14, 15, 17, 0x7FFFFFFF, 0xFFFFFFFF, 10**9, 2**31)


def _pos(data: bytes, k: int, lo: int = 0, hi: int | None = None) -> int:
    hi = len(data) if hi is None else min(hi, len(data))
    return lo + k % max(1, hi - lo) if hi > lo else 0


def truncate_header(data: bytes, a: int, b: int, c: int) -> bytes:
    return data[: a % HEADER]


def truncate(data: bytes, a: int, b: int, c: int) -> bytes:
    return data[: _pos(data, a, HEADER)]


def truncate_hdf5_metadata(data: bytes, a: int, b: int, c: int) -> bytes:
    """Cut inside the first 4 KB after the HDF5 superblock (its metadata)."""
    return data[: _pos(data, a, HDF5_OFFSET, HDF5_OFFSET + 4096)]


def bit_flips(data: bytes, a: int, b: int, c: int) -> bytes:
    out = bytearray(data)
    for i in range(1 + c % 8):
        p = _pos(data, a + i * 7919 * (b + 1))
        if out:
            out[p] ^= 1 << ((b + i) % 8)
    return bytes(out)


def zero_run(data: bytes, a: int, b: int, c: int) -> bytes:
    p, n = _pos(data, a), 1 + b % 64
    return data[:p] + b"\0" * n + data[p + n :]


def ff_run(data: bytes, a: int, b: int, c: int) -> bytes:
    p, n = _pos(data, a), 1 + b % 64
    return data[:p] + b"\xff" * n + data[p + n :]


def chunk_dup(data: bytes, a: int, b: int, c: int) -> bytes:
    p, n, q = _pos(data, a), 1 + b % 4096, _pos(data, c)
    return data[:q] + data[p : p + n] + data[q:]


def chunk_del(data: bytes, a: int, b: int, c: int) -> bytes:
    p, n = _pos(data, a, HEADER), 1 + b % 4096
    return data[:p] + data[p + n :]


def text_mode_copy(data: bytes, a: int, b: int, c: int) -> bytes:
    """What an FTP ASCII transfer or a Windows text-mode write does."""
    return data.replace(b"\n", b"\r\n") if a % 2 else data.replace(b"\r\n", b"\n")


def replace_header(data: bytes, a: int, b: int, c: int) -> bytes:
    headers = (
        b"\0" * HEADER,
        b"\xff" * HEADER,
        b"MATLAB 5.0 MAT-file".ljust(HEADER, b" "),  # no version, no endian mark
        b"MATLAB 5.0 MAT-file".ljust(124, b" ") + b"\x00\x01MI",  # swapped endian
        b"MATLAB 7.3 MAT-file".ljust(124, b" ") + b"\x00\x02IM",
        b"\x89HDF\r\n\x1a\n".ljust(HEADER, b"\0"),
        bytes((a * 31 + i * b) % 256 for i in range(HEADER)),
    )
    return headers[c % len(headers)] + data[HEADER:]


def _elements(data: bytes) -> list[tuple[int, int, int]]:
    """(offset, type, size) of the top-level elements of a v7 little-endian file."""
    out, pos = [], HEADER
    while pos + 8 <= len(data):
        mdtype, size = struct.unpack_from("<II", data, pos)
        if mdtype not in (14, 15):
            break
        out.append((pos, mdtype, size))
        pos += 8 + size + (-size % 8 if mdtype == 14 else 0)
    return out


def inner(data: bytes, a: int, b: int, c: int) -> bytes:
    """Mutate inside a compressed variable and compress it again.

    This reaches mat-io's decoder with a valid zlib stream, the way the
    crashing mutants of fixtures/malformed were made.
    """
    compressed = [e for e in _elements(data) if e[1] == 15]
    if not compressed:
        return bit_flips(data, a, b, c)
    offset, _, size = compressed[c % len(compressed)]
    try:
        body = bytearray(zlib.decompress(data[offset + 8 : offset + 8 + size]))
    except zlib.error:
        return data
    how = (a >> 3) % 4
    if how == 0 and len(body) >= 8:  # overwrite an aligned 32-bit word
        p = (a % (len(body) // 4)) * 4
        body[p : p + 4] = struct.pack("<I", SPECIAL_U32[b % len(SPECIAL_U32)])
    elif how == 1:  # flip a few bits
        for i in range(1 + b % 4):
            body[(a + 977 * i) % len(body)] ^= 1 << (i % 8)
    elif how == 2:  # cut the inner element short
        body = body[: 8 + a % max(1, len(body) - 8)]
    else:  # an array-flags class byte (offset 16 holds the first one)
        hits = [
            i
            for i in range(0, len(body) - 16, 8)
            if body[i : i + 8] == b"\x06\0\0\0\x08\0\0\0"
        ]
        if hits:
            body[hits[a % len(hits)] + 8] = b % 18
    packed = zlib.compress(bytes(body))
    tag = struct.pack("<II", 15, len(packed))
    return data[:offset] + tag + packed + data[offset + 8 + size :]


OPERATORS: dict[str, Callable[[bytes, int, int, int], bytes]] = {
    "truncate_header": truncate_header,
    "truncate": truncate,
    "truncate_hdf5_metadata": truncate_hdf5_metadata,
    "bit_flips": bit_flips,
    "zero_run": zero_run,
    "ff_run": ff_run,
    "chunk_dup": chunk_dup,
    "chunk_del": chunk_del,
    "text_mode_copy": text_mode_copy,
    "replace_header": replace_header,
    "inner": inner,
}
