"""Reading files from strangers: check the structure, then decode in a child.

mat-io's compiled v5 reader trusts the sizes and classes a file declares: a
flipped byte can make it read past a buffer (segfault, bus error) or allocate
what the file merely claims (a 2^31-element struct array). Two defences,
both here so the rest of the code never meets them:

1. ``scan`` walks a v7 file's element tags before mat-io sees it. Every
   declared size is checked against the bytes present, and every compressed
   element is inflated (counting, not keeping, the output) so a truncated or
   damaged stream is named precisely and the decompressed size is known.
2. ``run_isolated`` runs the scan and then the decoder in a forked child,
   the decoder under an address-space limit (a fixed multiple of that
   decompressed size) and a CPU-time limit (with a looser wall-clock backstop
   for a reader that blocks). A crash, a memory blow-up or a hang in the
   child becomes a ``ConversionError`` in the parent; the decoded records
   come back pickled, their arrays written raw into a shared in-memory file
   that the parent maps once the child has exited (no copy; each array's
   pages are freed when it dies). Scanning in the child lets the parent do
   other work meanwhile (``meanwhile``: the pipeline imports torch). On a big v7 file the scan
   inflates in a thread beside mat-io; any failure there is retried the
   careful way (scan first), so damage is described the same either way.

Where ``os.fork`` does not exist (Windows) the decoder runs in-process, with
the structural checks only.
"""

from __future__ import annotations

import contextlib
import functools
import mmap
import os
import pickle
import select
import signal
import struct
import time
import weakref
import zlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codegen.diagnostics import ConversionError

MI_MATRIX = 14
MI_COMPRESSED = 15
HEADER = 128
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"

# The child may use this much address space beyond what it starts with:
# FIXED + FACTOR × the file's decompressed size. mat-io's measured peak is
# 2.2-2.3× the decompressed size on weight-heavy files and 7.1× on a 10^5-layer
# chain of objects (benchmarks/untrusted_read.py), so 16× leaves room.
MEMORY_FIXED = 512 << 20
MEMORY_FACTOR = 16
# A v7 file this big is inflated by the scan while mat-io reads it.
OVERLAP_BYTES = 64 << 20
# HDF5 (v7.3) files compress per chunk; their decompressed size is not known
# up front, so the file size times this factor stands in for it.
HDF5_EXPANSION = 8
# Wall-clock limit: a fixed part plus time per decompressed megabyte.
TIME_FIXED_S = 60.0
TIME_PER_MB_S = 2.0
# The limit is CPU time; wall-clock time may run this many times longer
# (a loaded machine) before the child is killed as stuck.
WALL_FACTOR = 5

_HINT = (
    "Save the network again in MATLAB (save('net.mat','net')) and copy the file anew."
)


@dataclass(frozen=True)
class Layout:
    """What the structural scan learnt about a file."""

    version: str  # "v7" (v5 format, possibly compressed) or "v7.3" (HDF5)
    size: int  # bytes on disk
    decompressed: int  # bytes the decoder will see (estimate for HDF5)

    @property
    def memory_limit(self) -> int:
        return MEMORY_FIXED + MEMORY_FACTOR * self.decompressed

    @property
    def time_limit(self) -> float:
        return TIME_FIXED_S + TIME_PER_MB_S * self.decompressed / 1e6


def corrupt(path: Path, what: str) -> ConversionError:
    """The one wording for a damaged file: where, and what is wrong."""
    return ConversionError(
        f"{path.name} is damaged: {what}; it is not a .mat file MATLAB could load.",
        hint=_HINT,
    )


# --------------------------------------------------------------------------
# 1. structural scan


def scan(path: Path, inflate: bool = True) -> Layout:
    """Check every top-level element of a v7 file against the bytes present.

    ``inflate=False`` skips inflating compressed elements (their damage and
    decompressed size stay unknown; the compressed size stands in): enough
    before listing variables, which reads only their headers.
    """
    st = path.stat()
    key = (st.st_ino, st.st_mtime_ns, st.st_ctime_ns)
    return _scan(path, st.st_size, key, inflate)


@functools.lru_cache(maxsize=8)
def _scan(
    path: Path, size: int, _version: tuple[int, int, int], inflate: bool
) -> Layout:
    with path.open("rb") as fh:
        head = fh.read(HEADER)
        if size >= 520:
            fh.seek(512)
            if fh.read(8) == HDF5_SIGNATURE:
                return Layout("v7.3", size, size * HDF5_EXPANSION)
    if head[:8] == HDF5_SIGNATURE:
        return Layout("v7.3", size, size * HDF5_EXPANSION)
    if not head.startswith(b"MATLAB") or len(head) < HEADER:
        return Layout("other", size, size)  # level 4 or refused elsewhere
    endian = head[126:128]
    if endian not in (b"IM", b"MI"):
        raise corrupt(
            path,
            f"its header's byte-order mark is {endian!r}, not 'IM' or 'MI' "
            "(bytes 126-127)",
        )
    order = "<" if endian == b"IM" else ">"
    if size == HEADER:
        return Layout("v7", size, 0)
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as m:
        starts, total = _walk(path, m, order, inflate)
        _check_subsystem(path, head, order, starts, size)
    return Layout("v7", size, total)


def _walk(path: Path, m: mmap.mmap, order: str, inflate: bool) -> tuple[set[int], int]:
    size = len(m)
    pos, total, starts = HEADER, 0, set()
    while pos < size:
        if size - pos < 8:
            raise corrupt(
                path,
                f"it ends {size - pos} byte(s) into an element tag at byte {pos} "
                "(the file is truncated)",
            )
        mdtype, nbytes = struct.unpack_from(order + "II", m, pos)
        if mdtype >> 16:  # a small data element packed in its tag
            raise corrupt(
                path,
                f"the top-level element at byte {pos} is not a variable (its tag "
                "is that of a packed small data element)",
            )
        if mdtype not in (MI_MATRIX, MI_COMPRESSED):
            raise corrupt(
                path,
                f"the top-level element at byte {pos} has data type {mdtype}, "
                "not a variable (14) or compressed variable (15)",
            )
        if nbytes > size - pos - 8:
            raise corrupt(
                path,
                f"the variable at byte {pos} declares {nbytes:,} bytes but only "
                f"{size - pos - 8:,} follow (the file is truncated)",
            )
        starts.add(pos)
        body = pos + 8
        if mdtype == MI_COMPRESSED and inflate:
            total += _inflated_size(path, m, body, nbytes, order)
        else:
            total += nbytes + 8
        pos = body + nbytes + (-nbytes % 8 if mdtype == MI_MATRIX else 0)
    return starts, total


def _inflated_size(
    path: Path, m: mmap.mmap, start: int, nbytes: int, order: str
) -> int:
    """Inflate one compressed variable, keeping only its first tag and length."""
    inflater = zlib.decompressobj()
    total, first = 0, b""
    try:
        chunk = 1 << 20
        for offset in range(start, start + nbytes, chunk):
            data = m[offset : min(offset + chunk, start + nbytes)]
            while data:
                out = inflater.decompress(data, 1 << 24)
                total += len(out)
                if len(first) < 8:
                    first += out[: 8 - len(first)]
                data = inflater.unconsumed_tail
            if inflater.eof:
                break
    except zlib.error as exc:
        raise corrupt(
            path,
            f"the compressed variable at byte {start - 8} does not inflate ({exc})",
        ) from None
    if not inflater.eof:
        raise corrupt(
            path,
            f"the compressed variable at byte {start - 8} ends before its "
            "compressed data does (truncated or damaged)",
        )
    if len(first) < 8:
        raise corrupt(path, f"the compressed variable at byte {start - 8} is empty")
    mdtype, inner = struct.unpack(order + "II", first)
    if mdtype != MI_MATRIX:
        raise corrupt(
            path,
            f"the compressed variable at byte {start - 8} does not hold a "
            "variable (its first tag is not miMATRIX)",
        )
    if inner > total - 8:
        raise corrupt(
            path,
            f"the compressed variable at byte {start - 8} declares {inner:,} bytes "
            f"but inflates to only {total - 8:,}",
        )
    return total


def _check_subsystem(
    path: Path, head: bytes, order: str, starts: set[int], size: int
) -> None:
    raw = head[116:124]
    if raw in (b" " * 8, b"\0" * 8):
        return
    offset = struct.unpack(order + "Q", raw)[0]
    if offset and offset not in starts:
        raise corrupt(
            path,
            f"its header places the object data (subsystem) at byte {offset:,}, "
            f"where no variable starts (the file has {size:,} bytes)",
        )


# --------------------------------------------------------------------------
# 2. decoding in a child process


_MEANWHILE: ContextVar[tuple[Callable[[], object], ...]] = ContextVar(
    "meanwhile", default=()
)


@contextlib.contextmanager
def meanwhile(*steps: Callable[[], object]) -> Iterator[None]:
    """Run ``steps`` in this process, in order, while the next full read
    decodes in its child (the two share the machine's cores instead of taking
    turns); the steps left when the child is done are skipped, not waited for."""
    token = _MEANWHILE.set(steps)
    try:
        yield
    finally:
        _MEANWHILE.reset(token)


def run_isolated(
    path: Path,
    fn: Callable[..., Any],
    *args: Any,
    full: bool = True,
    prepare: Callable[[], object] | None = None,
) -> Any:
    """``fn(*args)`` in a forked child that runs ``prepare`` (an import this
    process has not paid for), scans ``path`` (inflating compressed elements
    unless ``full`` is false) and then runs ``fn`` under the memory and time
    limits of the scan's ``Layout``.

    Exceptions raised by ``fn`` come back as ``("error", type, message)``;
    its result comes back pickled. A file of ``OVERLAP_BYTES`` or more is
    inflated by the scan while ``fn`` runs (two cores instead of one, 2.2 s
    less on a 514 MB file); if that child fails, the file is read again the
    careful way, so a damaged file is described exactly as before.
    """
    if not hasattr(os, "fork"):
        return fn(*args)
    if full and path.stat().st_size >= OVERLAP_BYTES:
        result = _run_child(path, fn, args, full, prepare, overlap=True)
        if result is not _RETRY:
            return result
    return _run_child(path, fn, args, full, prepare, overlap=False)


def _run_child(
    path: Path,
    fn: Callable[..., Any],
    args: Any,
    full: bool,
    prepare: Callable[[], object] | None,
    *,
    overlap: bool,
) -> Any:
    # Until the child knows the decompressed size, bound the wall clock by
    # an estimate as generous as the one used for HDF5 files.
    estimate = Layout("", 0, path.stat().st_size * HDF5_EXPANSION)
    read_fd, write_fd = os.pipe()
    shared = _shared_file()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(read_fd)
        _child((write_fd, shared), path, full, prepare, fn, args, overlap)
    os.close(write_fd)
    # The CPU-time limit catches a spinning reader; this catches a stuck one.
    deadline = time.monotonic() + WALL_FACTOR * estimate.time_limit
    try:
        steps = _MEANWHILE.get() if full else ()
        if steps:
            _MEANWHILE.set(())  # once per conversion
        for step in steps:
            if select.select([read_fd], [], [], 0)[0]:  # the child is done
                break
            step()
        result = _receive(read_fd, pid, deadline)
    except BaseException:  # Ctrl-C: do not leave the reader running
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(shared)
        raise
    _, status = os.waitpid(pid, 0)  # the child's memory is free: now map
    if isinstance(result, tuple):
        result = _unpickle(shared, *result)
    os.close(shared)
    slow = os.WIFSIGNALED(status) and os.WTERMSIG(status) in (
        signal.SIGXCPU,
        signal.SIGKILL,
    )
    if result is _STUCK or slow:
        raise corrupt(
            path,
            f"reading it took longer than {estimate.time_limit:.0f} s, far longer "
            "than a file of its size needs",
        )
    crashed = os.WIFSIGNALED(status) or result is _SILENT
    no_memory = not crashed and result[0] == "error" and result[1][0] == "MemoryError"
    if overlap and (crashed or no_memory):
        return _RETRY  # damage the scan had not reached yet, or a low estimate
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        name = signal.Signals(sig).name if sig in signal.valid_signals() else sig
        raise corrupt(
            path,
            f"the MAT reader (mat-io) crashed on it ({name}) because its "
            "internal structure is inconsistent",
        )
    if result is _SILENT:
        raise corrupt(path, "the MAT reader stopped without an answer")
    kind, value = result
    if kind == "ok":
        return value
    if kind == "refused":
        raise ConversionError(value[0], hint=value[1])
    exc_type, message = value
    if exc_type == "MemoryError":
        raise corrupt(
            path,
            "it declares arrays far larger than the data it holds "
            f"({int(message or 0):,} bytes once decompressed)",
        )
    raise Failed(exc_type, message)


class Failed(Exception):
    """An exception the decoder raised in the child: its type name and text."""

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(message)
        self.type_name = type_name
        self.message = message


def _child(
    fds: tuple[int, int],
    path: Path,
    full: bool,
    prepare: Callable[[], object] | None,
    fn: Callable[..., Any],
    args: Any,
    overlap: bool,
) -> None:
    code = 0
    try:
        import faulthandler

        faulthandler.disable()  # a crash here is reported by the parent
        layout = None
        try:
            if prepare is not None:
                prepare()
            if overlap:
                payload = _overlapped(path, fn, args)
            else:
                layout = scan(path, inflate=full)
                _limit(layout)
                payload = ("ok", fn(*args))
        except MemoryError:
            size = layout.decompressed if layout else 0
            payload = ("error", ("MemoryError", str(size)))
        except ConversionError as exc:
            payload = ("refused", (exc.message, exc.hint))
        except BaseException as exc:  # everything must come back as words
            payload = ("error", (type(exc).__name__, str(exc)))
        _send(fds, payload)
    except BaseException:
        code = 1
    finally:
        os._exit(code)


def _overlapped(path: Path, fn: Callable[..., Any], args: Any) -> tuple[str, Any]:
    """``fn(*args)`` while a thread inflates the file for the scan (zlib lets
    go of the GIL), under limits for the estimated size until the scan knows
    the real one. The scan's verdict on damage wins over ``fn``'s result."""
    import threading

    layout = scan(path, inflate=False)  # every tag and size, nothing inflated
    base = _address_space()
    _limit(Layout(layout.version, layout.size, layout.size * HDF5_EXPANSION), base)
    verdict: list[BaseException | Layout] = []

    def inflate() -> None:
        try:
            verdict.append(scan(path))
            _limit(verdict[0], base)  # type: ignore[arg-type]
        except BaseException as exc:  # reported after fn is done
            verdict.append(exc)

    scanner = threading.Thread(target=inflate)
    scanner.start()
    try:
        result = fn(*args)
    except BaseException as exc:
        failure: BaseException | None = exc
    else:
        failure = None
    scanner.join()
    if isinstance(verdict[0], BaseException):
        raise verdict[0]
    if failure is not None:
        raise failure
    return ("ok", result)


def _limit(layout: Layout, base: int | None = None) -> None:
    """Limit this process to ``layout``'s memory beyond ``base`` (default:
    what it uses now) and to its CPU time."""
    try:
        import resource

        limit = (_address_space() if base is None else base) + layout.memory_limit
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        seconds = int(layout.time_limit) + 1  # CPU time: immune to a busy machine
        resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds + 5))
    except (ImportError, ValueError, OSError):
        pass


def _shared_file() -> int:
    """An unnamed file in memory (or in the temporary folder where memfd does
    not exist) through which the child hands over its arrays: one write each,
    mapped by the parent (a pipe took 1.9 s for 553 MB)."""
    if hasattr(os, "memfd_create"):
        return os.memfd_create("mat2torch-read", os.MFD_CLOEXEC)
    import tempfile

    with tempfile.TemporaryFile() as fh:
        return os.dup(fh.fileno())


ALIGN = mmap.ALLOCATIONGRANULARITY  # each array starts a page: mapped alone


def _send(fds: tuple[int, int], payload: Any) -> None:
    """Pickle ``payload`` with its arrays' memory written raw, uncopied, into
    the shared file, each at an ``ALIGN``-ed offset; the pipe carries the
    pickle's length and bytes, then each buffer's offset and length."""
    pipe, shared = fds
    buffers: list[pickle.PickleBuffer] = []

    def out_of_band(buffer: pickle.PickleBuffer) -> bool:
        if buffer.raw().nbytes < 1 << 16:
            return True  # small arrays stay in the pickle
        buffers.append(buffer)
        return False

    try:
        head = pickle.dumps(payload, protocol=5, buffer_callback=out_of_band)
    except MemoryError:
        head, buffers = pickle.dumps(("error", ("MemoryError", "0"))), []
    places = []
    offset = 0
    for buffer in buffers:
        view = buffer.raw()
        done = 0
        while done < view.nbytes:
            done += os.pwrite(shared, view[done:], offset + done)
        places.append((offset, view.nbytes))
        offset += -(-view.nbytes // ALIGN) * ALIGN
    with os.fdopen(pipe, "wb") as out:
        out.write(struct.pack("<QQ", len(head), len(places)))
        out.write(head)
        for place in places:
            out.write(struct.pack("<QQ", *place))


def _address_space() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


_STUCK = object()  # the child overran the deadline (and was killed)
_RETRY = object()  # the overlapped read failed: read again the careful way
_SILENT = object()  # the child ended without a complete answer


def _receive(fd: int, pid: int, deadline: float) -> Any:
    """The pickle and the places of its buffers in the shared file (see
    ``_send``), ``_STUCK`` or ``_SILENT``."""
    import selectors

    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)

        def fill(view: memoryview) -> bool:
            done = 0
            while done < len(view):
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(timeout=left):
                    os.kill(pid, signal.SIGKILL)
                    raise _Overrun
                n = os.readv(fd, [view[done:]])
                if not n:
                    return False
                done += n
            return True

        try:
            sizes = bytearray(16)
            if not fill(memoryview(sizes)):
                return _SILENT
            head_size, count = struct.unpack("<QQ", sizes)
            head = bytearray(head_size)
            places = bytearray(16 * count)
            if not fill(memoryview(head)) or not fill(memoryview(places)):
                return _SILENT
            return head, list(struct.iter_unpack("<QQ", places))
        except _Overrun:
            return _STUCK
        except Exception:  # a garbled answer
            return _SILENT
        finally:
            os.close(fd)


def _unpickle(shared: int, head: bytes, places: list[tuple[int, int]]) -> Any:
    """The child's payload, each of its arrays mapped from the shared file
    (no copy); an array's pages are handed back to the system when it dies."""
    import numpy as np

    buffers = []
    try:
        for offset, size in places:
            memory = mmap.mmap(shared, size, offset=offset)
            buffer = np.frombuffer(memory, np.uint8)
            weakref.finalize(buffer, _release, memory)
            buffers.append(buffer)
        return pickle.loads(head, buffers=buffers)
    except Exception:  # a garbled answer
        return _SILENT


def _release(memory: mmap.mmap) -> None:
    """Free a dead array's pages in the shared file (they outlive the mapping)."""
    with contextlib.suppress(OSError, AttributeError):
        memory.madvise(mmap.MADV_REMOVE)


class _Overrun(Exception):
    pass
