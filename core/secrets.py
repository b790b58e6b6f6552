"""Secrets generated at first start under DATA_DIR: created 0600, never logged."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path


def write_private_file(path: Path, content: str) -> None:
    """Create `path` with mode 0600 atomically; an existing file is never overwritten."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(content)


def ensure_secret(path: Path, generate: Callable[[], str] | None = None) -> tuple[str, bool]:
    """The secret stored at `path`, generating it on first use; returns (secret, created)."""
    try:
        return path.read_text(encoding="utf-8").strip(), False
    except FileNotFoundError:
        pass
    value = (generate or (lambda: secrets.token_urlsafe(32)))()
    try:
        write_private_file(path, value + "\n")
    except FileExistsError:  # another process won the race: use its value
        return path.read_text(encoding="utf-8").strip(), False
    return value, True
