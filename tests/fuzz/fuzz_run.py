"""Run one fuzz case through convert, verify and inspect, and classify it.

A case runs in a forked child with an address-space limit and a wall-clock
limit, so a crash, a hang or a memory blow-up is seen and named instead of
taking the test run down. The acceptable outcomes are ``converted`` (and
verified, and called convertible by inspect) and ``refused`` (a
ConversionError that names the file and says what is wrong, nothing
written). Everything else is a bug; ``BUGS`` lists the kinds.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Imported once here: every case is a fork of this process.
import torch

import codegen.inspection
import codegen.verify  # noqa: F401
from codegen.layers import registry

registry()  # the layer families too, before any fork

REPO = Path(__file__).resolve().parents[2]
EXAMPLES_DIR = REPO / "examples"
REAL_DIR = REPO.parent / "shared" / "fixtures" / "real"

MEMORY_LIMIT = 3 << 30  # address space a case may add to its parent's
# CPU seconds a case may use (a loaded machine does not make it a hang); a
# case blocked without using CPU is killed after WALL_FACTOR times as long.
TIME_LIMIT = 120.0
WALL_FACTOR = 5

OK = ("converted", "refused")
BUGS = (
    "traceback",  # an exception other than ConversionError escaped
    "crash",  # killed by a signal
    "hang",  # over the wall-clock limit
    "memory",  # MemoryError, or killed at the address-space limit
    "partial-output",  # something written into the output folder on refusal
    "internal-wording",  # a refusal worded as an internal error / "please report"
    "file-not-named",  # a refusal that does not name the file
    "layer-not-named",  # a layer diagnostic without its layer
    "disagree",  # inspect and convert disagree about convertibility
    "verify-differs",  # converted, but verify finds a difference
)
INTERNAL_WORDS = ("internal error", "please report")


@dataclass(frozen=True)
class Outcome:
    kind: str
    detail: str = ""

    @property
    def bug(self) -> bool:
        return self.kind not in OK


def run_case(
    path: Path,
    workdir: Path,
    *,
    time_limit: float = TIME_LIMIT,
    memory_limit: int = MEMORY_LIMIT,
    entry_points: tuple[str, ...] = ("convert", "verify", "inspect"),
) -> Outcome:
    """Classify what the entry points do with ``path`` (in a limited child)."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        os.setpgid(0, 0)  # its own group: a hang kills the reader child too
        code = 0
        try:
            import faulthandler
            import resource

            faulthandler.disable()  # pytest's dump is noise: the parent reports
            _limit_memory(memory_limit)
            cpu = int(time_limit) + 1
            resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
            try:
                outcome = _classify(path, workdir, entry_points)
            except MemoryError:
                outcome = Outcome("memory", "MemoryError")
            with os.fdopen(write_fd, "w") as fh:
                json.dump([outcome.kind, outcome.detail], fh)
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(write_fd)
    deadline = time.monotonic() + WALL_FACTOR * time_limit
    chunks = []
    import selectors

    with selectors.DefaultSelector() as sel:
        sel.register(read_fd, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(timeout=left):
                _kill_group(pid)
                os.close(read_fd)
                return Outcome("hang", f"blocked over {WALL_FACTOR * time_limit:.0f} s")
            chunk = os.read(read_fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    os.close(read_fd)
    _, status = os.waitpid(pid, 0)
    _kill_group(pid, wait=False)  # a reader child it left behind
    if os.WIFSIGNALED(status):
        sig = signal.Signals(os.WTERMSIG(status)).name
        if sig == "SIGXCPU":
            return Outcome("hang", f"over {time_limit:.0f} s of CPU time")
        kind = "memory" if sig == "SIGKILL" else "crash"
        return Outcome(kind, sig)
    try:
        kind, detail = json.loads(b"".join(chunks))
    except ValueError:
        return Outcome("crash", f"child exited with status {os.WEXITSTATUS(status)}")
    return Outcome(kind, detail)


def _kill_group(pid: int, wait: bool = True) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if wait:
        os.waitpid(pid, 0)


def _limit_memory(extra: int) -> None:
    import resource

    with open("/proc/self/statm") as fh:
        used = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    resource.setrlimit(resource.RLIMIT_AS, (used + extra, used + extra))


def _classify(path: Path, workdir: Path, entry_points: tuple[str, ...]) -> Outcome:
    from codegen.diagnostics import ConversionError
    from codegen.inspection import inspect
    from codegen.pipeline import convert
    from codegen.verify import verify

    out = workdir / "out"
    shutil.rmtree(out, ignore_errors=True)
    var = None
    try:
        try:
            convert(path, out)
        except ConversionError as exc:
            if "--var NAME" not in exc.render():
                raise
            var = _first_network(path)  # reach past "holds 2 networks"
            convert(path, out, var=var)
        converted, refusal = True, None
    except ConversionError as exc:
        converted, refusal = False, exc
    except MemoryError:
        raise
    except Exception:
        return Outcome("traceback", "convert: " + _where())
    if refusal is not None:
        bad = _bad_refusal(refusal, path)
        if bad:
            return bad
        if out.exists() and any(out.iterdir()):
            return Outcome("partial-output", ", ".join(p.name for p in out.iterdir()))
    elif "verify" in entry_points:
        try:
            report = verify(path, out, var=var)
            if not report.ok and _finite_weights(out):
                return Outcome("verify-differs", report.render()[-300:])
        except ConversionError as exc:
            bad = _bad_refusal(exc, path)
            if bad:
                return Outcome(bad.kind, "verify: " + bad.detail)
        except MemoryError:
            raise
        except Exception:
            return Outcome("traceback", "verify: " + _where())
    if "inspect" in entry_points:
        try:
            report = inspect(path, var)
            convertible: bool | None = bool(report["convertible"])
        except ConversionError as exc:
            bad = _bad_refusal(exc, path)
            if bad:
                return Outcome(bad.kind, "inspect: " + bad.detail)
            convertible = None
        except MemoryError:
            raise
        except Exception:
            return Outcome("traceback", "inspect: " + _where())
        if convertible and not converted:
            return Outcome(
                "disagree", f"inspect: convertible; convert: {refusal.render()[:300]}"
            )
        if converted and not convertible:
            return Outcome("disagree", "convert succeeded; inspect refuses")
    if converted:
        return Outcome("converted")
    return Outcome("refused", refusal.render()[:400])


def _finite_weights(out: Path) -> bool:
    """Whether every saved weight is finite. With an Inf weight (kept as the
    file has it) outputs hold Inf and NaN, and where a NaN appears depends on
    the order of operations: a difference there says nothing about the
    conversion."""
    state = torch.load(out / "weights.pt", weights_only=True)
    return all(
        bool(v.isfinite().all()) for v in state.values() if v.is_floating_point()
    )


def _first_network(path: Path) -> str | None:
    from codegen.matfile import list_variables
    from codegen.pipeline import is_network_variable

    names = [v.name for v in list_variables(path) if is_network_variable(v)]
    return names[-1] if names else None


def _bad_refusal(exc: Any, path: Path) -> Outcome | None:
    text = exc.render()
    if any(w in text.lower() for w in INTERNAL_WORDS):
        return Outcome("internal-wording", text[:400])
    if path.name not in text:
        return Outcome("file-not-named", text[:400])
    for d in exc.diagnostics:
        if not d.layer:
            return Outcome("layer-not-named", d.render()[:400])
    return None


def _where() -> str:
    """The exception and the innermost frame of our code that raised it."""
    tb = traceback.extract_tb(__import__("sys").exc_info()[2])
    ours = [f for f in tb if "/codegen/" in f.filename] or tb
    f = ours[-1]
    exc = __import__("sys").exc_info()[1]
    return (
        f"{type(exc).__name__}@{Path(f.filename).parent.name}/"
        f"{Path(f.filename).name}:{f.lineno} {f.name}: {str(exc)[:200]}"
    )


def summary(counts: dict[str, int]) -> str:
    return ", ".join(
        f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])
    )
