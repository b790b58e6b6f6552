"""The transit signer against a real OpenBao server (`bao server -dev`, started by the tests).

Oracles: solders verifies every signature against the key's public key as
OpenBao reports it; OpenBao's own audit device counts the requests it served.
"""

from __future__ import annotations

import base64
import json
import time

import pytest
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from core.chain.errors import SignerError, SignerUnavailable
from core.chain.signer_setup import configured_signer_name, load_signers, signer_from_spec
from core.chain.transit import TransitSigner
from core.config import ConfigError, redacted
from tests.support.openbao import OpenBao


def audit_requests(server: OpenBao, path: str) -> int:
    """How many requests to `path` OpenBao's own file audit device recorded."""
    lines = server.audit_log.read_text().splitlines()
    entries = [json.loads(line) for line in lines if line.strip()]
    return sum(1 for e in entries if e["type"] == "request" and e["request"]["path"] == path)


def test_batch_signing_is_one_request_and_each_signature_verifies(openbao) -> None:
    key = openbao.new_transit_key()
    signer = TransitSigner(openbao.url, key, token=openbao.sign_only_token(key))
    messages = [f"message {i}".encode() * (i + 1) for i in range(40)]
    signatures = signer.sign_many(messages)
    assert audit_requests(openbao, f"transit/sign/{key}") == 1
    one_by_one = TransitSigner(openbao.url, key, token=openbao.token, batch=False)
    one_by_one.sign_many(messages[:5])
    assert audit_requests(openbao, f"transit/sign/{key}") == 6
    # What the audit device shows: who asked and which path; the input only as an HMAC.
    assert base64.b64encode(messages[3]).decode() not in openbao.audit_log.read_text()
    public = openbao.client().secrets.transit.read_key(key)["data"]["keys"]["1"]["public_key"]
    expected = Pubkey.from_bytes(base64.b64decode(public))
    assert signer.pubkey == expected and signer.key_version == 1
    assert all(s.verify(expected, m) for s, m in zip(signatures, messages, strict=True))
    assert not signatures[0].verify(expected, messages[1])


def test_the_signer_stays_on_its_key_version_after_a_transit_rotation(openbao) -> None:
    key = openbao.new_transit_key()
    signer = TransitSigner(openbao.url, key, token=openbao.token)
    openbao.client().secrets.transit.rotate_key(key)  # version 2: a new key pair
    (signature,) = signer.sign_many([b"still v1"])
    assert signer.key_version == 1 and signature.verify(signer.pubkey, b"still v1")
    latest = TransitSigner(openbao.url, key, token=openbao.token)
    assert latest.key_version == 2 and latest.pubkey != signer.pubkey
    with pytest.raises(SignerError, match="no version 7"):
        TransitSigner(openbao.url, key, token=openbao.token, key_version=7)


def test_unreachable_and_refused_are_unavailable_not_errors(openbao) -> None:
    key = openbao.new_transit_key()
    with pytest.raises(SignerUnavailable, match="ConnectionError"):
        TransitSigner("http://127.0.0.1:9", key, token="t", timeout=2)
    with pytest.raises(SignerUnavailable, match="permission denied"):
        TransitSigner(openbao.url, key, token="not-a-token")
    read_only = openbao.client()
    read_only.sys.create_or_update_policy(
        f"read-{key}", f'path "transit/keys/{key}" {{ capabilities = ["read"] }}'
    )
    token = read_only.auth.token.create(policies=[f"read-{key}"], ttl="1h")["auth"]["client_token"]
    signer = TransitSigner(openbao.url, key, token=token)
    with pytest.raises(SignerUnavailable, match="permission denied"):
        signer.sign_many([b"x"])
    with pytest.raises(SignerError, match="no such key"):
        TransitSigner(openbao.url, "no-such-key", token=openbao.token)
    openbao.client().secrets.transit.create_key(f"{key}-rsa", key_type="rsa-2048")
    with pytest.raises(SignerError, match="ed25519"):
        TransitSigner(openbao.url, f"{key}-rsa", token=openbao.token)


def test_an_expired_token_is_unavailable_and_approle_logs_in_again(openbao) -> None:
    key = openbao.new_transit_key()
    short = openbao.sign_only_token(key, ttl="2s")
    signer = TransitSigner(openbao.url, key, token=short)
    deadline = time.monotonic() + 30
    while True:  # wait for the condition "the token is refused", with a deadline
        try:
            signer.sign_many([b"x"])
        except SignerUnavailable as exc:
            assert "permission denied" in str(exc)
            break
        assert time.monotonic() < deadline, "the 2 s token never expired"
        time.sleep(0.2)
    client = openbao.client()
    if "approle/" not in client.sys.list_auth_methods()["data"]:
        client.sys.enable_auth_method("approle")
    client.sys.create_or_update_policy(
        f"sign-{key}",
        f'path "transit/sign/{key}" {{ capabilities = ["update"] }}\n'
        f'path "transit/keys/{key}" {{ capabilities = ["read"] }}',
    )
    client.auth.approle.create_or_update_approle(
        f"role-{key}", token_policies=[f"sign-{key}"], token_ttl="2s", token_max_ttl="2s"
    )
    role_id = client.auth.approle.read_role_id(f"role-{key}")["data"]["role_id"]
    secret_id = client.auth.approle.generate_secret_id(f"role-{key}")["data"]["secret_id"]
    approle = TransitSigner(openbao.url, key, role_id=role_id, secret_id=secret_id)
    first_token = approle._client.token
    deadline = time.monotonic() + 30
    while approle._client.token == first_token:  # until a refused token forced a new login
        (signature,) = approle.sign_many([b"y"])
        assert signature.verify(approle.pubkey, b"y")
        assert time.monotonic() < deadline, "the AppRole token never expired"
        time.sleep(0.2)
    assert secret_id not in repr(approle) and role_id not in repr(approle)


def test_sealed_is_unavailable_and_unsealed_signs_again(openbao) -> None:
    key = openbao.new_transit_key()
    signer = TransitSigner(openbao.url, key, token=openbao.token)
    unseal_key = next(
        line.split(":", 1)[1].strip()
        for line in openbao.log_path.read_text().splitlines()
        if line.startswith("Unseal Key:")
    )
    openbao.client().sys.seal()
    try:
        with pytest.raises(SignerUnavailable, match="sealed"):
            signer.sign_many([b"z"])
    finally:
        openbao.client().sys.submit_unseal_key(unseal_key)
    (signature,) = signer.sign_many([b"z"])
    assert signature.verify(signer.pubkey, b"z")


def test_settings_name_the_missing_transit_variables(make_settings) -> None:
    with pytest.raises(ConfigError) as excinfo:
        make_settings(AUTHORITY_SIGNER="vault-transit")
    variables = {variable for variable, _, _ in excinfo.value.problems}
    assert variables == {"VAULT_ADDR", "VAULT_SECRET_ID", "VAULT_TRANSIT_KEY"}
    with pytest.raises(ConfigError, match="VAULT_ROLE_ID and VAULT_SECRET_ID"):
        make_settings(
            AUTHORITY_SIGNER="vault-transit",
            VAULT_ADDR="http://127.0.0.1:8200",
            VAULT_TRANSIT_KEY="grx",
            VAULT_ROLE_ID="r",
        )


def test_signers_from_settings_and_specs(make_settings, openbao, tmp_path) -> None:
    key = openbao.new_transit_key()
    payer_path = tmp_path / "payer.json"
    settings = make_settings(**openbao.env(key, FEE_PAYER_KEYPAIR_PATH=str(payer_path)))
    signers = load_signers(settings.app)
    assert signers.authority.name == f"vault-transit:transit/{key}"
    assert signers.payer_is_separate and payer_path.stat().st_mode & 0o777 == 0o600
    assert (
        signers.fee_payer_pubkey
        == Keypair.from_bytes(bytes(json.loads(payer_path.read_text()))).pubkey()
    )
    assert (
        signer_from_spec(f"vault-transit:{key}@1", settings.app).pubkey == signers.authority.pubkey
    )
    assert signer_from_spec(f"file:{payer_path}", settings.app).pubkey == signers.fee_payer.pubkey
    assert configured_signer_name(settings.app) == signers.authority.name
    assert settings.app.vault_token not in json.dumps(redacted(settings))
    with pytest.raises(ValueError, match="names no signer"):
        signer_from_spec("kms:whatever", settings.app)
