"""A month's archive on disk, written so a crash never leaves a file that looks complete.

    <root>/<YYYY-MM>/            0700
        meter_readings.jsonl.gz  0600  canonical lines (core.archive.rows), id order
        events.jsonl.gz          0600
        manifest.json            0600  months, row counts, sums, sha256 of each file
        SHA256SUMS               0600  `sha256sum -c SHA256SUMS` checks all three

Every file is written to a temporary name, flushed to disk and renamed; SHA256SUMS is
written last, so its presence is what says the month's archive is whole ("sealed").
gzip is written with no name and mtime 0: the same rows give the same bytes, so a
rerun after a crash writes the same files. `verify_month` reads everything back,
decompresses it (gzip checks its CRC), and recomputes every figure of the manifest.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Connection

from core.archive.fingerprint import month_fingerprint
from core.archive.rows import TABLES, Summary, canonical, month_rows
from core.db.partitions import bounds
from core.file_modes import PRIVATE_DIR, PRIVATE_FILE

FORMAT = "gridtokenx-archive"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SUMS = "SHA256SUMS"
_FLUSH_LINES = 1_000


class ArchiveInvalid(Exception):
    """An archive on disk does not verify: a file is missing, altered or truncated."""


def month_text(month: date) -> str:
    return f"{month.year:04d}-{month.month:02d}"


def month_dir(root: Path, month: date) -> Path:
    return root / month_text(month)


def data_file(table: str) -> str:
    return f"{table}.jsonl.gz"


def is_sealed(directory: Path) -> bool:
    return (directory / SUMS).exists()


def _private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    path.chmod(PRIVATE_DIR)  # mkdir's mode passes through the umask


def _fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _write_private(path: Path, write: Callable[[IO[bytes]], None]) -> tuple[str, int]:
    """Write `path` 0600 through a temporary name; its sha256 and size."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.unlink(missing_ok=True)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    with os.fdopen(descriptor, "wb") as raw:
        write(raw)
        raw.flush()
        os.fsync(raw.fileno())
    os.replace(temporary, path)
    return _sha256(path), path.stat().st_size


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_rows(connection: Connection, table: str, month: date, summary: Summary):
    def write(raw: IO[bytes]) -> None:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz:
            pending: list[bytes] = []
            for row in month_rows(connection, table, month):
                line = canonical(row)
                summary.add(table, row, line)
                pending.append(line)
                if len(pending) >= _FLUSH_LINES:
                    gz.write(b"".join(pending))
                    pending.clear()
            gz.write(b"".join(pending))

    return write


def write_month(
    connection: Connection, month: date, directory: Path, schema_version: str | None
) -> dict[str, Any]:
    """Write the month's rows, its manifest and SHA256SUMS (last); the manifest."""
    _private_dir(directory.parent)
    _private_dir(directory)
    (directory / SUMS).unlink(missing_ok=True)  # rewriting: unsealed until done again
    start, end = bounds(month)
    files: dict[str, Any] = {}
    sums: dict[str, str] = {}
    for table in TABLES:
        summary = Summary()
        name = data_file(table)
        sha, size = _write_private(directory / name, _write_rows(connection, table, month, summary))
        files[table] = {"file": name, "sha256": sha, "bytes": size, **summary.as_manifest(table)}
        sums[name] = sha
    if connection.dialect.name == "postgresql":  # after the rows: its SET LOCALs stay
        for table in TABLES:
            files[table]["db_fingerprint"] = month_fingerprint(connection, table, month)
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "schema_version": schema_version,
        "months": [month_text(month)],
        "from": start.isoformat(),
        "to": end.isoformat(),
        "tables": files,
    }
    body = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    sums[MANIFEST], _ = _write_private(directory / MANIFEST, lambda raw: raw.write(body))
    listing = "".join(f"{sha}  {name}\n" for name, sha in sorted(sums.items())).encode()
    _write_private(directory / SUMS, lambda raw: raw.write(listing))
    _fsync_dir(directory)
    return manifest


def _read_sums(directory: Path) -> dict[str, str]:
    sums: dict[str, str] = {}
    for line in (directory / SUMS).read_text().splitlines():
        sha, _, name = line.partition("  ")
        sums[name] = sha
    return sums


def _parsed(directory: Path, table: str) -> Iterator[tuple[dict[str, Any], bytes]]:
    with gzip.open(directory / data_file(table), "rb") as handle:
        for line in handle:
            yield json.loads(line), line


def lines(directory: Path, table: str) -> Iterator[tuple[int, bytes]]:
    """(id, line) of the table's file, in file order."""
    for row, line in _parsed(directory, table):
        yield row["id"], line


def manifest_entry(directory: Path, table: str) -> dict[str, Any]:
    """The table's entry of a verified archive's manifest."""
    return json.loads((directory / MANIFEST).read_text())["tables"][table]


def verify_month(directory: Path, month: date) -> dict[str, Any]:
    """Read the whole archive back; its manifest, or ArchiveInvalid saying what is wrong."""
    if not is_sealed(directory):
        raise ArchiveInvalid(f"{directory}: no {SUMS}, the archive was never completed")
    sums = _read_sums(directory)
    for name in (MANIFEST, *(data_file(table) for table in TABLES)):
        path = directory / name
        if not path.exists():
            raise ArchiveInvalid(f"{path} is missing")
        if _sha256(path) != sums.get(name):
            raise ArchiveInvalid(f"{path} does not match its sha256 in {SUMS}")
    manifest = json.loads((directory / MANIFEST).read_text())
    if manifest.get("format") != FORMAT or manifest.get("months") != [month_text(month)]:
        raise ArchiveInvalid(f"{directory / MANIFEST} is not the archive of {month_text(month)}")
    for table in TABLES:
        entry = manifest["tables"][table]
        if entry["sha256"] != sums[data_file(table)]:
            raise ArchiveInvalid(f"{table}: manifest and {SUMS} disagree")
        summary = Summary()
        previous = 0
        try:
            for row, line in _parsed(directory, table):
                row_id = row["id"]
                if row_id <= previous:
                    raise ArchiveInvalid(f"{table}: line of id {row_id} out of order")
                previous = row_id
                summary.add(table, row, line)
        except (OSError, EOFError, ValueError) as exc:  # gzip CRC, truncation, bad JSON
            raise ArchiveInvalid(f"{directory / data_file(table)}: {exc}") from exc
        recomputed = summary.as_manifest(table)
        if {key: entry[key] for key in recomputed} != recomputed:
            raise ArchiveInvalid(f"{table}: the file's rows do not add up to its manifest")
    return manifest
