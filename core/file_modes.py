"""Who may read what the console keeps on disk: DATA_DIR 0700, its databases 0600.

SQLite creates a database, its -wal and its -shm with the process umask (0644
usually), so any local user could read every password hash and meter-key hash.
Here the files are created 0600 before SQLite opens them (SQLite then gives the
-wal and -shm the database file's mode), and at every start the modes are
checked: a file or directory others can reach is reported by name and fixed.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


def make_private_dir(path: Path) -> None:
    """Create `path` (and missing parents) with the directory itself 0700."""
    if not path.exists():
        path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
        path.chmod(PRIVATE_DIR)  # mkdir's mode is filtered by the umask


def create_private_file(path: Path) -> None:
    """Make sure `path` exists, created 0600 if it did not (an existing one is left alone)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        return
    os.close(fd)


def sqlite_files(database: Path) -> list[Path]:
    """The database file and the companions SQLite keeps beside it."""
    return [database, *(database.with_name(database.name + end) for end in SQLITE_COMPANIONS)]


def prepare_sqlite_file(database: Path) -> None:
    """Before SQLite opens `database`: its directory exists, the file is there 0600."""
    if not database.parent.exists():
        make_private_dir(database.parent)
    create_private_file(database)
    check_private(sqlite_files(database))


# What the console itself keeps in DATA_DIR (CONTRACT: SQLite file, keys, ledger).
DATA_SUBDIRS = ("secrets", "keys", "localnet")


def secure_data_dir(data_dir: Path, database: Path | None = None) -> list[Path]:
    """At start: DATA_DIR 0700 (created so), and what the console keeps there, and the
    SQLite database wherever it is, private; returns what had to be fixed."""
    make_private_dir(data_dir)
    paths: list[Path] = []
    for folder in (data_dir, *(data_dir / name for name in DATA_SUBDIRS)):
        if folder.is_dir():
            paths += [folder, *(child for child in folder.iterdir() if child.is_file())]
    if database is not None:
        paths += sqlite_files(database)
    return check_private(paths)


def check_private(paths: Iterable[Path]) -> list[Path]:
    """Fix every existing path that group or others can reach; returns those fixed.

    Each fix is logged as a warning naming the file, its old mode and the new one:
    someone widened it, or an older version created it so.
    """
    if os.name != "posix":  # no POSIX modes (Windows ACLs are out of scope)
        return []
    fixed = []
    for path in paths:
        try:
            info = path.lstat()
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(info.st_mode):
            continue  # the link's target is someone else's choice; its own mode means nothing
        private = PRIVATE_DIR if stat.S_ISDIR(info.st_mode) else PRIVATE_FILE
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            path.chmod(mode & private)
            log.warning(
                "%s had mode %04o, readable by other users; set to %04o",
                path,
                mode,
                mode & private,
            )
            fixed.append(path)
    return fixed
