"""`python -m core.archive --before YYYY-MM [--to PATH] [--dry-run]`.

Archives every closed month strictly before YYYY-MM into PATH (default
DATA_DIR/archive), one directory per month. Exit codes: 0 done (or nothing to do),
1 refused or stopped (the message says why and what to do), 2 bad arguments or settings.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from core.archive.files import ArchiveInvalid
from core.archive.removal import ArchiveMismatch
from core.archive.run import ArchiveRefused, archive_before
from core.bootstrap import bootstrap
from core.config import ConfigError
from core.db.migrate import DatabaseNotMigrated
from core.db.partitions import parse_month


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m core.archive",
        description="Write closed months' readings and events to verified files, then "
        "remove them from the database.",
    )
    parser.add_argument(
        "--before", required=True, help="YYYY-MM: archive every month strictly before it"
    )
    parser.add_argument("--to", type=Path, help="archive directory (default DATA_DIR/archive)")
    parser.add_argument(
        "--dry-run", action="store_true", help="print what would be done; change nothing"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    try:
        before = parse_month(args.before)
    except ValueError as exc:
        print(f"archive: --before: {exc}", file=sys.stderr)
        return 2
    try:
        app = bootstrap()
    except (ConfigError, DatabaseNotMigrated) as exc:
        print(f"archive: {exc}", file=sys.stderr)
        return 2
    root = args.to or app.settings.app.data_dir / "archive"
    try:
        archive_before(
            app.engine,
            app.settings.tokenization,
            before,
            root,
            now=datetime.now(UTC),
            dry_run=args.dry_run,
            say=lambda line: print(f"archive: {line}", flush=True),
        )
    except ArchiveRefused as exc:
        print("archive: refused; nothing of these months was written or removed:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    except (ArchiveInvalid, ArchiveMismatch) as exc:
        print(
            f"archive: stopped: {exc}. Rows removed so far are in their verified archive and "
            "counted in the totals; nothing else was removed. Find out why the database and "
            "the archive differ before rerunning.",
            file=sys.stderr,
        )
        return 1
    finally:
        app.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
