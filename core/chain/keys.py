"""The mint authority keypair, in the Solana CLI's JSON format (an array of 64 ints).

The same file works with `solana-keygen pubkey` and `solana -k`, so operators
can inspect and fund the authority with the standard tools. It is generated on
first start with mode 0600. A file that others can read is refused, not
warned about: whoever reads it can mint GRX. Secret bytes are never logged,
and no error message quotes the file's contents.
"""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path

from solders.keypair import Keypair

from core.chain.errors import KeypairError
from core.secrets import write_private_file

log = logging.getLogger(__name__)

KEYPAIR_LENGTH = 64


_VARIABLE = {"authority": "AUTHORITY_KEYPAIR_PATH", "fee payer": "FEE_PAYER_KEYPAIR_PATH"}


def _check_permissions(path: Path, role: str) -> None:
    if os.name != "posix":  # no POSIX modes to check (Windows ACLs are out of scope)
        return
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise KeypairError(
            f"the {role} keypair {path} has mode {mode:04o}, so other users can read it; "
            f"run `chmod 600 {path}` (or move the file to a private directory)"
        )


def parse_keypair(text: str, *, source: str = "keypair") -> Keypair:
    """A Keypair from Solana CLI JSON text; errors name `source`, never the bytes."""
    fix = "it must be a JSON array of 64 integers 0..255, as written by `solana-keygen new`"
    try:
        values = json.loads(text)
    except json.JSONDecodeError as exc:
        raise KeypairError(f"{source} is not valid JSON; {fix}") from exc
    if (
        not isinstance(values, list)
        or len(values) != KEYPAIR_LENGTH
        or not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in values)
    ):
        raise KeypairError(f"{source} is not a Solana keypair; {fix}")
    try:
        return Keypair.from_bytes(bytes(values))
    except ValueError as exc:
        # The last 32 bytes must be the public key of the first 32.
        raise KeypairError(
            f"{source} is corrupt (its public half does not match its secret half); "
            "restore it from a backup or, on a fresh deployment, delete it to generate a new one"
        ) from exc


def load_keypair(path: Path, *, role: str = "authority") -> Keypair:
    """Read an existing keypair file, refusing loose permissions and malformed content."""
    variable = _VARIABLE.get(role, "the keypair path")
    try:
        _check_permissions(path, role)
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise KeypairError(
            f"the {role} keypair {path} does not exist; set {variable} "
            "to an existing Solana CLI keypair, or unset it to generate one under DATA_DIR"
        ) from exc
    except OSError as exc:
        raise KeypairError(f"the {role} keypair {path} cannot be read: {exc.strerror}") from exc
    return parse_keypair(text, source=f"the {role} keypair {path}")


def keypair_json(keypair: Keypair) -> str:
    """The Solana CLI file content for `keypair` (the secret: handle with care)."""
    return json.dumps(list(bytes(keypair)))


def load_or_create_keypair(path: Path, *, role: str = "authority") -> Keypair:
    """The keypair at `path`, generated (0600, in a 0700 directory) when it does not exist."""
    if not path.exists():
        keypair = Keypair()
        try:
            write_private_file(path, keypair_json(keypair) + "\n")
        except FileExistsError:
            pass  # another process created it first: use theirs, below
        else:
            log.info("generated the %s keypair %s (pubkey %s)", role, path, keypair.pubkey())
            return keypair
    return load_keypair(path, role=role)
