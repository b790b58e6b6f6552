"""`python -m mutation`: run mutmut over the configured modules, then print the scores.

Runs from a fresh `mutants/` each time (the results then match the code as it
is), with MUTATION_JOBS workers (default 1: the machine is shared) under the
caller's `nice`. mutmut's own progress goes to mutants/mutmut.log.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from mutation.report import configured_modules, explained, render, scores

MUTANTS = Path("mutants")


def main() -> int:
    jobs = os.environ.get("MUTATION_JOBS", "1")
    if os.environ.get("MUTATION_KEEP") != "1":
        shutil.rmtree(MUTANTS, ignore_errors=True)  # no stale verdicts from older code
    MUTANTS.mkdir(exist_ok=True)
    mutmut = Path(sys.executable).with_name("mutmut")
    log = MUTANTS / "mutmut.log"
    print(f"mutmut run --max-children {jobs}  (progress in {log})", flush=True)
    with log.open("w") as out:
        run = subprocess.run(  # noqa: S603  (our own venv's mutmut, fixed arguments)
            [str(mutmut), "run", "--max-children", jobs], stdout=out, stderr=subprocess.STDOUT
        )
    tail = log.read_text(errors="replace").replace("\r", "\n").strip().splitlines()[-3:]
    print("\n".join(line.strip() for line in tail))
    if run.returncode != 0:
        print(f"mutmut failed with exit code {run.returncode}; see {log}")
        return run.returncode
    table, ok = render(scores(configured_modules()), explained())
    print(table)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
