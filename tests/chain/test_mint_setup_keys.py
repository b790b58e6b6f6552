"""The authority keypair file: Solana CLI format, created 0600, refused when others can read it."""

from __future__ import annotations

import json
import logging
import stat
from pathlib import Path

import pytest
from solders.keypair import Keypair

from core.chain.errors import KeypairError
from core.chain.keys import keypair_json, load_keypair, load_or_create_keypair


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def test_first_start_creates_a_private_cli_keypair_and_then_reuses_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "keys" / "authority.json"
    with caplog.at_level(logging.DEBUG):
        created = load_or_create_keypair(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    values = json.loads(path.read_text())
    assert len(values) == 64 and all(0 <= v <= 255 for v in values)
    assert Keypair.from_bytes(bytes(values)) == created  # what solana-keygen reads back
    assert load_or_create_keypair(path) == created
    secret_text = ",".join(str(v) for v in values[:32])
    assert str(created.pubkey()) in caplog.text
    assert secret_text not in caplog.text and path.read_text().strip() not in caplog.text


def test_reads_a_keypair_written_by_solana_keygen(tmp_path: Path) -> None:
    keypair = Keypair()
    path = write(tmp_path / "id.json", keypair_json(keypair))
    assert load_keypair(path).pubkey() == keypair.pubkey()


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_loose_permissions_are_refused_with_the_fix(tmp_path: Path, mode: int) -> None:
    path = write(tmp_path / "authority.json", keypair_json(Keypair()), mode)
    with pytest.raises(KeypairError) as excinfo:
        load_or_create_keypair(path)
    assert str(path) in str(excinfo.value) and f"chmod 600 {path}" in str(excinfo.value)
    assert excinfo.value.code == "invalid_keypair"


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        "{}",
        "[1, 2, 3]",
        json.dumps([0] * 63),
        json.dumps([256] + [0] * 63),
        json.dumps([True] * 64),
        json.dumps(["1"] * 64),
    ],
)
def test_malformed_files_name_the_path_and_never_echo_content(tmp_path: Path, content) -> None:
    path = write(tmp_path / "authority.json", content)
    with pytest.raises(KeypairError) as excinfo:
        load_or_create_keypair(path)
    message = str(excinfo.value)
    assert str(path) in message and "solana-keygen" in message
    assert content not in message


def test_a_keypair_whose_halves_disagree_is_corrupt(tmp_path: Path) -> None:
    values = list(bytes(Keypair()))
    values[40] ^= 1
    path = write(tmp_path / "authority.json", json.dumps(values))
    with pytest.raises(KeypairError, match="corrupt"):
        load_keypair(path)


def test_an_explicit_path_that_does_not_exist_is_reported(tmp_path: Path) -> None:
    with pytest.raises(KeypairError, match="AUTHORITY_KEYPAIR_PATH"):
        load_keypair(tmp_path / "missing.json")
