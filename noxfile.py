"""nox sessions: tests, lint, examples (check goldens), examples_update, fuzz."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "tests", "examples"]
TORCH = "torch==2.13.0"  # installed first: a bare `torch` may pull a CUDA build


def _install(session: nox.Session) -> None:
    session.install(TORCH)
    session.install("-e", ".[dev]")


@nox.session(python="3.11")
def tests(session: nox.Session) -> None:
    _install(session)
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    """The project's code, then the generated code by the strictest standard."""
    _install(session)
    session.run("ruff", "check", "codegen", "tests", "benchmarks", "noxfile.py")
    session.run("ruff", "check", "templates")
    session.run("mypy", "--strict", "templates/helpers")
    session.run(
        "black", "--check", "codegen", "tests", "noxfile.py", "generated_examples"
    )
    # ruff ALL + mypy --strict on the goldens and on every real-file conversion
    session.run("python", "-m", "pytest", "-q", "tests/test_generated_lint.py")


@nox.session(python="3.11")
def examples(session: nox.Session) -> None:
    _install(session)
    session.run("python", "-m", "pytest", "tests/test_examples.py", *session.posargs)


@nox.session(python="3.11")
def examples_update(session: nox.Session) -> None:
    _install(session)
    session.run("python", "tests/update_examples.py")


@nox.session(python="3.11")
def fuzz(session: nox.Session) -> None:
    """The long fuzz mode: 10,000 cases, time-boxed (not part of the default run)."""
    _install(session)
    args = session.posargs or ["--cases", "10000", "--minutes", "120"]
    session.run("python", "tests/fuzz/long_run.py", *args)
