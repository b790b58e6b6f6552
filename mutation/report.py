"""Per-module mutation scores from mutmut's result files, and survivors the docs do not explain.

mutmut writes one `mutants/<module>.py.meta` JSON per mutated file: each mutant's
name and the exit code of its test run (1 or 3 killed, 0 survived, 33 no tests...).
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

# mutmut's exit codes (mutmut.stats.status_by_exit_code), grouped as this report counts them.
KILLED = {1, 3, 36, 37, -24, 24, 152, 255, -11, -9}  # failed, timed out, crashed, type-checked
SURVIVED = {0}
NO_TESTS = {5, 33}
THRESHOLD = 95.0
# A row of docs/TESTING.md's survivor table: | `mutant` | verdict | why |
_ROW = re.compile(r"^\|\s*`(?P<name>[\w.]+__mutmut_\d+)`\s*\|\s*(?P<verdict>[\w ]+?)\s*\|", re.M)
EQUIVALENT = "equivalent"


@dataclass
class ModuleScore:
    module: str
    killed: int = 0
    survived: list[str] = field(default_factory=list)
    untested: list[str] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.killed + len(self.survived) + len(self.untested) + len(self.unchecked)

    @property
    def raw(self) -> float:
        """Killed among all mutants."""
        return 100.0 * self.killed / self.total if self.total else 0.0

    def score(self, verdicts: dict[str, str]) -> float:
        """Killed among the killable: documented equivalent mutants leave the denominator."""
        equivalent = sum(1 for name in self.survived if verdicts.get(name) == EQUIVALENT)
        killable = self.total - equivalent
        return 100.0 * self.killed / killable if killable else 100.0


def configured_modules(pyproject: Path = Path("pyproject.toml")) -> list[str]:
    """The files [tool.mutmut] only_mutate names: one line each, the single list to extend."""
    config = tomllib.loads(pyproject.read_text())["tool"]["mutmut"]
    return list(config["only_mutate"])


def scores(modules: list[str], mutants: Path = Path("mutants")) -> list[ModuleScore]:
    result = []
    for module in modules:
        score = ModuleScore(module)
        meta = mutants / f"{module}.meta"
        codes = json.loads(meta.read_text())["exit_code_by_key"] if meta.exists() else {}
        for name, code in sorted(codes.items(), key=lambda item: _natural(item[0])):
            if code in KILLED:
                score.killed += 1
            elif code in SURVIVED:
                score.survived.append(name)
            elif code in NO_TESTS:
                score.untested.append(name)
            else:
                score.unchecked.append(name)
        result.append(score)
    return result


def explained(doc: Path = Path("docs/TESTING.md")) -> dict[str, str]:
    """Mutant name -> verdict ("equivalent", "accepted") from docs/TESTING.md's table."""
    if not doc.exists():
        return {}
    return {m["name"]: m["verdict"].strip().lower() for m in _ROW.finditer(doc.read_text())}


def render(results: list[ModuleScore], verdicts: dict[str, str]) -> tuple[str, bool]:
    """The table, each survivor with its documented verdict, and whether all modules pass.

    A module passes when at least THRESHOLD % of its killable mutants are killed and
    every mutant that was not killed is explained in docs/TESTING.md.
    """
    header = f"{'module':<28} {'mutants':>7} {'killed':>6} {'equiv':>5} {'other':>5}"
    lines = [f"{header} {'killed%':>7} {'score':>6}"]
    ok = True
    for r in results:
        missed = r.survived + r.untested + r.unchecked
        equivalent = sum(1 for name in r.survived if verdicts.get(name) == EQUIVALENT)
        score = r.score(verdicts)
        lines.append(
            f"{r.module:<28} {r.total:>7} {r.killed:>6} {equivalent:>5} "
            f"{len(missed) - equivalent:>5} {r.raw:>6.1f}% {score:>5.1f}%"
        )
        unexplained = [name for name in missed if name not in verdicts]
        ok = ok and r.total > 0 and score >= THRESHOLD and not unexplained and not r.unchecked
    lines.append("score = killed / (mutants - equivalent); killed% = killed / mutants")
    for r in results:
        for name in r.survived + r.untested + r.unchecked:
            lines.append(f"  not killed: {name}  [{verdicts.get(name, 'NOT IN docs/TESTING.md')}]")
    lines.append(
        f"threshold {THRESHOLD:.0f}% per module, every survivor explained: "
        f"{'met' if ok else 'NOT met'}"
    )
    return "\n".join(lines), ok


def _natural(name: str) -> tuple[str, int]:
    stem, _, number = name.rpartition("_")
    return stem, int(number) if number.isdigit() else 0
