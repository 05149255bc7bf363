"""The quick fuzz slice: a few hundred seeded cases in every test run.

Each case is a mutant file run through convert, verify and inspect in a
limited child process (fuzz_run.run_case); it must end converted-and-verified
or cleanly refused. Hypothesis is derandomized here, so the slice is the
same on every run and a failure shrinks to a small reproducible case; the
long mode (`nox -s fuzz`, tests/fuzz/long_run.py) draws thousands more.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from fuzz_cases import NOT_MAT, Case, cases, materialize
from fuzz_run import REAL_DIR, run_case
from hypothesis import HealthCheck, given, settings

QUICK = settings(
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module")
def workdir() -> Path:
    with tempfile.TemporaryDirectory(prefix="mat2torch-fuzz-") as tmp:
        yield Path(tmp)


def _check(case: Case, workdir: Path) -> None:
    path, what = materialize(case, workdir / "case")
    if path == Path():  # the MAT writer cannot express this mutant
        return
    outcome = run_case(path, workdir / "case", time_limit=120)
    assert not outcome.bug, f"{what}: {outcome.kind}: {outcome.detail}"


@settings(QUICK, max_examples=150)
@given(case=cases(weights=(8, 1, 1), long_chains=False))
def test_mutants(case: Case, workdir: Path) -> None:
    """~120 byte mutants (cheap), ~15 record mutants (most convert, then are
    verified and inspected: seconds each), ~15 non-MAT files."""
    _check(case, workdir)


@pytest.mark.parametrize("kind", NOT_MAT)
def test_files_that_are_not_mat_files(kind: str, workdir: Path) -> None:
    path, _ = materialize(Case("not-mat", kind, a=12345), workdir / kind)
    outcome = run_case(path, workdir / kind)
    assert outcome.kind == "refused", outcome


def test_the_harness_sees_a_crash_and_a_traceback(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The classifier can fail: a killed child and an escaping exception."""
    import os
    import signal

    from codegen import pipeline

    path, _ = materialize(Case("not-mat", "empty"), workdir / "probe")
    monkeypatch.setattr(pipeline, "list_and_load", lambda *a: 1 / 0)
    assert run_case(path, workdir / "probe").kind == "traceback"
    monkeypatch.setattr(
        pipeline, "list_and_load", lambda *a: os.kill(os.getpid(), signal.SIGSEGV)
    )
    assert run_case(path, workdir / "probe").kind == "crash"
    monkeypatch.setattr(pipeline, "list_and_load", lambda *a: bytearray(1 << 34))
    assert run_case(path, workdir / "probe").kind == "memory"
    monkeypatch.setattr(
        pipeline, "list_and_load", lambda *a: __import__("time").sleep(30)
    )
    assert run_case(path, workdir / "probe", time_limit=1).kind == "hang"


MALFORMED = REAL_DIR.parent / "malformed"


@pytest.mark.parametrize(
    "name",
    sorted(p.name for p in MALFORMED.glob("*.mat")) if MALFORMED.is_dir() else [],
)
def test_the_shared_malformed_mutants(name: str, workdir: Path) -> None:
    """The mutants that once crashed mat2torch (../shared/fixtures/malformed):
    each is now refused cleanly or, where still a valid network, converted."""
    outcome = run_case(MALFORMED / name, workdir / "malformed")
    assert not outcome.bug, f"{name}: {outcome.kind}: {outcome.detail}"


def test_malformed_fixtures_present() -> None:
    if not MALFORMED.is_dir():
        pytest.skip(f"{MALFORMED} is absent (../shared is not checked out)")
    assert len(list(MALFORMED.glob("*.mat"))) >= 25
