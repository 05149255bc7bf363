"""Fuzz cases as data, their Hypothesis strategies, and turning them into files."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import fuzz_bytes
import fuzz_records
from fuzz_run import EXAMPLES_DIR, REAL_DIR
from hypothesis import strategies as st

from codegen.matfile import write_mat

# Real files larger than this are left to the long mode (reading them takes
# seconds, and the byte operators do not care about size).
QUICK_SIZE = 300_000


@dataclass(frozen=True)
class Case:
    family: str  # "bytes", "records" or "not-mat"
    source: str  # file name, base network or kind of non-MAT file
    op: str = ""
    a: int = 0
    b: int = 0
    c: int = 0
    version: str = "v7"

    def describe(self) -> str:
        return f"{self.family}:{self.source}:{self.op}({self.a},{self.b},{self.c}){'' if self.version == 'v7' else ' ' + self.version}"


@functools.cache
def byte_sources(max_size: int | None = QUICK_SIZE) -> tuple[str, ...]:
    """Files for byte mutants: examples, their v7.3 twins, and real files."""
    names = [f"examples/{p.name}" for p in sorted(EXAMPLES_DIR.glob("*.mat"))]
    names += [f"v73/{p.stem}" for p in sorted(EXAMPLES_DIR.glob("*.mat"))[:3]]
    if REAL_DIR.is_dir():
        names += [
            f"real/{p.name}"
            for p in sorted(REAL_DIR.glob("*.mat"))
            if max_size is None or p.stat().st_size <= max_size
        ]
    return tuple(names)


NOT_MAT = (
    "empty",
    "text",
    "binary",
    "hdf5-plain",
    "hdf5-matlab-empty",
    "lfs",
    "header-only",
    "v4-like",
)

ints = st.integers(min_value=0, max_value=2**32 - 1)


def cases(
    max_size: int | None = QUICK_SIZE,
    weights: tuple[int, int, int] = (6, 3, 1),
    long_chains: bool = True,
) -> st.SearchStrategy[Case]:
    """Byte mutants, record mutants and non-MAT files, drawn by ``weights``."""
    byte_cases = st.builds(
        Case,
        family=st.just("bytes"),
        source=st.sampled_from(byte_sources(max_size)),
        op=st.sampled_from(sorted(fuzz_bytes.OPERATORS)),
        a=ints,
        b=ints,
        c=ints,
    )
    not_mat = st.builds(
        Case, family=st.just("not-mat"), source=st.sampled_from(NOT_MAT), a=ints
    )
    b, r, n = weights
    records = record_cases(long_chains)
    return st.one_of(*[byte_cases] * b, *[records] * r, *[not_mat] * n)


def record_cases(long_chains: bool = True) -> st.SearchStrategy[Case]:
    ops = sorted(set(fuzz_records.MUTATIONS) - {"long_chain"})
    return st.builds(
        Case,
        family=st.just("records"),
        source=st.sampled_from(sorted(fuzz_records.BASES)),
        # long chains cost seconds each: one draw in 25
        op=st.sampled_from(ops * 3 + ["long_chain"] if long_chains else ops),
        a=ints,
        b=ints,
        c=ints,
        version=st.sampled_from(["v7", "v7", "v7", "v7.3"]),
    )


# --------------------------------------------------------------------------
# materializing


@functools.cache
def _source_bytes(source: str, cache: Path) -> bytes:
    kind, _, name = source.partition("/")
    if kind == "examples":
        return (EXAMPLES_DIR / name).read_bytes()
    if kind == "real":
        return (REAL_DIR / name).read_bytes()
    target = cache / f"{name}.v73.mat"  # an example saved as v7.3 (HDF5)
    if not target.exists():
        from examples import EXAMPLES

        write_mat(target, EXAMPLES[name][0](), version="v7.3")
    return target.read_bytes()


def materialize(case: Case, workdir: Path) -> tuple[Path, str]:
    """Write the case's file into ``workdir``; return it and a description."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "case.mat"
    if case.family == "bytes":
        data = _source_bytes(case.source, workdir.parent)
        path.write_bytes(fuzz_bytes.OPERATORS[case.op](data, case.a, case.b, case.c))
        return path, case.describe()
    if case.family == "records" and case.op == "long_chain":
        return _long_chain(case, workdir)
    if case.family == "records":
        variables, what = fuzz_records.mutate(
            case.source, case.op, case.a, case.b, case.c
        )
        try:
            write_mat(path, variables, version=case.version)
        except Exception as exc:  # the writer cannot express every mutant
            return Path(), f"{what}: not writable ({type(exc).__name__})"
        return path, f"records:{what} {case.version}"
    _write_not_mat(case.source, path, case.a)
    return path, case.describe()


def _long_chain(case: Case, workdir: Path) -> tuple[Path, str]:
    """Chains do not depend on the base network: write each size once."""
    variables, _ = fuzz_records.mutate(case.source, case.op, case.a, case.b, case.c)
    n = len(variables["net"] if "net" in variables else next(iter(variables.values())))
    cached = workdir.parent / f"chain-{n}.mat"  # v7: a v7.3 10^5 chain takes ages
    if not cached.exists():
        write_mat(cached, {"net": next(iter(variables.values()))})
    path = workdir / "case.mat"
    path.write_bytes(cached.read_bytes())
    return path, f"records:a chain of {n - 1} ReLU layers"


def _write_not_mat(kind: str, path: Path, a: int) -> None:
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text(
            "load net.mat\nnet = trainNetwork(X, Y, layers, opts);\n" * (1 + a % 50)
        )
    elif kind == "binary":
        path.write_bytes(bytes((a * 7 + i * 13) % 256 for i in range(1 + a % 5000)))
    elif kind == "lfs":
        path.write_text(
            "version https://git-lfs.github.com/spec/v1\n"
            f"oid sha256:{'ab' * 32}\nsize {a % 10**8}\n"
        )
    elif kind == "header-only":
        path.write_bytes(
            b"MATLAB 5.0 MAT-file, Platform: GLNXA64".ljust(124) + b"\x00\x01IM"
        )
    elif kind == "v4-like":
        path.write_bytes(
            (0).to_bytes(4, "little")
            + (a % 2**31).to_bytes(4, "little")
            + b"\0" * (a % 300)
        )
    else:
        import h5py
        import numpy as np

        userblock = 512 if kind == "hdf5-matlab-empty" else 0
        with h5py.File(path, "w", userblock_size=userblock or None) as f:
            if kind == "hdf5-plain":
                f["data"] = np.arange(a % 100)
        if userblock:
            with path.open("r+b") as fh:
                fh.write(
                    b"MATLAB 7.3 MAT-file, Platform: GLNXA64".ljust(124) + b"\x00\x02IM"
                )
