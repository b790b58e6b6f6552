"""`make bench`: run every benchmark and write docs/PERFORMANCE.md.

Each benchmark is a script that prints its own figures; this runner records
them verbatim under their targets, with the command, the machine and the date.

    .venv/bin/python -m bench                 # all of them
    .venv/bin/python -m bench chain_mint      # some of them, by name
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "docs" / "PERFORMANCE.md"


@dataclass(frozen=True)
class Bench:
    name: str
    what: str
    targets: tuple[str, ...]


BENCHES = (
    Bench(
        "chain_mint",
        "10,000 readings to 1,000 wallets through the embedded node over HTTP",
        (">= 2,000 MintTo/s", "every transaction <= 1232 bytes", "exact balances and supply"),
    ),
    Bench(
        "mint_pipeline",
        "the mint pipeline on PostgreSQL through the embedded node",
        (
            "drain >= 2,000 readings/s (20,000 readings, 2,000 wallets)",
            "claim query < 5 ms at 1,000,000 readings, using the partial index",
            "acceptance -> minted p95 <= 3 s at 50 readings/s, default settings",
            "acceptance -> minted p50/p95 with pubsub confirmations no worse than polling only",
            "drain signed through OpenBao transit within 80% of the file signer",
        ),
    ),
    Bench(
        "pubsub_load",
        "the embedded node minting at full speed, 1,000 signature + 100 account subscriptions",
        (
            "commit -> notification p99 < 20 ms",
            "MintTo/s with subscribers no lower than without (~4,300 unloaded)",
        ),
    ),
    Bench(
        "mint_cost",
        "what minting a fleet costs, through the real scheduler and node",
        (
            "<= 100 lamports of fees per minted reading at the defaults "
            "(10,000 meters of 2,500 wallets every 15 minutes)",
            "acceptance -> minted p95 <= 120 s at the defaults",
            "side by side: wait 0 and 60 s, legacy and lookup tables",
        ),
    ),
    Bench(
        "ingest",
        "1,000 concurrent meters against the API on PostgreSQL",
        (
            ">= 500 accepted readings/s submitted individually",
            ">= 5,000 accepted readings/s through submit-batch",
            "accepted == stored, zero 5xx",
        ),
    ),
    Bench(
        "reading_budget",
        "the per-meter reading budget shared by the api processes on PostgreSQL",
        ("what one spend costs an ingest request (no target: reported against ingest's)",),
    ),
    Bench(
        "mqtt_ingest",
        "10,000 meters publishing through Mosquitto to the MQTT bridge on PostgreSQL",
        (
            ">= 5,000 accepted readings/s",
            "publish -> ack p99 < 250 ms",
            "accepted == stored",
        ),
    ),
    Bench(
        "ws_latency",
        "500 WebSocket clients, events at 50/s on PostgreSQL",
        ("commit -> receipt p99 < 50 ms", "every entitled event delivered exactly once"),
    ),
    Bench(
        "certificates",
        "certificate issuance from minted readings and the Certificates page's queries",
        (
            "issuance throughput (certificates/s) from 1,000,000 minted readings",
            "Certificates page under 1 s at 1,000,000 certificates",
            "certified Wh == floor(mWh / 1000) per device, exactly",
        ),
    ),
    Bench(
        "dashboard",
        "every dashboard page over 1,000,000 readings",
        ("every page renders in < 1 s",),
    ),
    Bench(
        "archive",
        "archiving one closed month (python -m core.archive) on PostgreSQL and SQLite",
        (
            "no target: write + verify and removal rates, CPU per row, archive bytes",
            "totals audit exact after removal",
        ),
    ),
)


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        memory_kb = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
        memory = f"{memory_kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        memory = "unknown RAM"
    return f"{os.cpu_count()} cores ({cpu}), {memory}, {platform.system()} {platform.release()}"


def run(bench: Bench) -> tuple[str, str, float, int]:
    command = f".venv/bin/python -m bench.{bench.name}"
    print(f"== {command}", flush=True)
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", f"bench.{bench.name}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    output = result.stdout.strip()
    if result.returncode != 0:
        output += f"\n(exit code {result.returncode})\n{result.stderr.strip()[-3000:]}"
    print(output, flush=True)
    return command, output, time.monotonic() - started, result.returncode


def main(names: list[str]) -> int:
    chosen = [b for b in BENCHES if not names or b.name in names]
    sections = []
    failures = 0
    for bench in chosen:
        command, output, seconds, code = run(bench)
        failures += code != 0
        targets = "\n".join(f"- target: {target}" for target in bench.targets)
        sections.append(
            f"## {bench.name}: {bench.what}\n\n{targets}\n\nCommand: `{command}` "
            f"({seconds:.0f} s, run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC)\n\n"
            f"```\n{output}\n```\n"
        )
    if names and REPORT.exists():
        sections = _merged(REPORT.read_text(), chosen, sections)
    header = (
        "# Performance\n\n"
        "Written by `make bench` (`.venv/bin/python -m bench`), which runs every script in "
        "bench/ and records what it printed. Benchmarks are not tests: they measure.\n\n"
        f"Machine: {machine()}. Last written: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.\n"
    )
    REPORT.write_text(header + "\n" + "\n".join(sections))
    print(f"wrote {REPORT.relative_to(ROOT)}")
    return 1 if failures else 0


def _merged(report: str, chosen: list[Bench], fresh: list[str]) -> list[str]:
    """The report's sections in BENCHES order, the chosen ones replaced by fresh runs."""
    old = {}
    for part in report.split("\n## ")[1:]:
        old[part.split(":", 1)[0]] = "## " + part.rstrip("\n") + "\n"
    new = dict(zip((b.name for b in chosen), fresh, strict=True))
    return [new.get(b.name) or old[b.name] for b in BENCHES if b.name in new or b.name in old]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
