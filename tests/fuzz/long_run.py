"""The long fuzz mode (`nox -s fuzz`): thousands of cases, every outcome counted.

Usage: python tests/fuzz/long_run.py [--cases N] [--minutes M] [--log FILE]
                                    [--seed S] [--weights B,R,N]

Two runs with different seeds use both cores of a 2-core machine.

Hypothesis generates the cases (seeded, so a run can be repeated); unlike
the quick slice in the test suite, a bug does not stop the run: every case's
outcome is appended to the log as one JSON line and the counts are printed
at the end. Exit status 1 if any case is a bug.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path[:0] = [str(Path(__file__).parent), str(Path(__file__).parent.parent)]

from fuzz_cases import Case, cases, materialize  # noqa: E402
from fuzz_run import run_case, summary  # noqa: E402
from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--minutes", type=float, default=120.0)
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--log", type=Path, default=Path("fuzz-log.jsonl"))
    parser.add_argument(
        "--weights",
        default="8,2,1",
        help="relative draws of byte mutants, record mutants and non-MAT files",
    )
    args = parser.parse_args()
    stop = time.monotonic() + args.minutes * 60
    counts: Counter[str] = Counter()
    started = time.monotonic()

    with (
        tempfile.TemporaryDirectory(prefix="mat2torch-fuzz-") as tmp,
        args.log.open("a") as log,
    ):
        work = Path(tmp) / "case"
        b, r, n = (int(w) for w in args.weights.split(","))
        mix = (b, r, n)

        @seed(args.seed)
        @settings(
            max_examples=args.cases,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        # Byte mutants cost ~0.2 s, record mutants (most convert, then are
        # verified and inspected) ~5 s on a shared 2-core machine.
        @given(case=cases(max_size=None, weights=mix))
        def one(case: Case) -> None:
            if time.monotonic() > stop:
                return
            t0 = time.monotonic()
            path, what = materialize(case, work)
            if path == Path():
                outcome_kind, detail = "unwritable", what
            else:
                outcome = run_case(path, work)
                outcome_kind, detail = outcome.kind, outcome.detail
            counts[outcome_kind] += 1
            log.write(
                json.dumps(
                    {
                        "case": case.describe(),
                        "what": what,
                        "outcome": outcome_kind,
                        "detail": detail,
                        "seconds": round(time.monotonic() - t0, 2),
                    }
                )
                + "\n"
            )
            log.flush()
            n = sum(counts.values())
            if n % 100 == 0:
                print(
                    f"{n} cases, {time.monotonic() - started:.0f} s: {summary(counts)}",
                    flush=True,
                )

        one()
    bugs = {
        k: v
        for k, v in counts.items()
        if k not in ("converted", "refused", "unwritable")
    }
    print(
        f"{sum(counts.values())} cases in {time.monotonic() - started:.0f} s: {summary(counts)}"
    )
    print("bugs:", summary(bugs) if bugs else "none")
    return 1 if bugs else 0


if __name__ == "__main__":
    sys.exit(main())
