"""The mint authority held by OpenBao / Vault transit: signed there, never exported.

A transit ed25519 key's public key is a Solana address, and its signature over
a transaction message is an ordinary Solana signature. The signer is pinned to
one key version: a transit rotation makes a new key pair (a new address), so
signing with "latest" would silently stop matching the mint authority. The
whole cycle's messages go out in one `batch_input` request.

Failures are classified for the pipeline: unreachable, sealed, or credentials
refused (token expired or revoked) -> SignerUnavailable (retry later; with
AppRole we log in again once first); a malformed answer -> SignerError.
Secrets (token, secret id) are never logged or put in messages.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import hvac
import requests
from hvac import exceptions as vault
from solders.pubkey import Pubkey
from solders.signature import Signature

from core.chain.errors import SignerError, SignerUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_BATCH = 500  # messages per request: one cycle's transactions fit in a few requests
SIGNATURE_LENGTH = 64


class TransitSigner:
    """Signs with `<mount>/keys/<key>` at one version through the transit HTTP API (hvac)."""

    def __init__(
        self,
        addr: str,
        key: str,
        *,
        mount: str = "transit",
        key_version: int | None = None,
        token: str = "",
        role_id: str = "",
        secret_id: str = "",
        ca_cert: Path | None = None,
        timeout: float = 10.0,
        batch: bool = True,
    ) -> None:
        self.addr = addr.rstrip("/")
        self.key = key
        self.mount = mount
        self.batch = batch  # False: one request per message (measured in bench/mint_pipeline)
        self._role_id = role_id
        self._secret_id = secret_id
        verify: bool | str = str(ca_cert) if ca_cert else True
        self._client = hvac.Client(
            url=self.addr, token=token or None, verify=verify, timeout=timeout
        )
        self.name = f"vault-transit:{mount}/{key}"
        if role_id:
            self._login()
        self._pubkey, self.key_version = self._read_public_key(key_version)

    def __repr__(self) -> str:
        return f"TransitSigner({self.name}@v{self.key_version}, {self._pubkey})"

    @property
    def pubkey(self) -> Pubkey:
        return self._pubkey

    # --- signing -----------------------------------------------------------------------

    def sign_many(self, messages: Sequence[bytes]) -> list[Signature]:
        if not messages:
            return []
        if not self.batch:
            return [self._sign_batch([message])[0] for message in messages]
        signatures: list[Signature] = []
        for start in range(0, len(messages), MAX_BATCH):
            signatures += self._sign_batch(messages[start : start + MAX_BATCH])
        return signatures

    def _sign_batch(self, messages: Sequence[bytes]) -> list[Signature]:
        batch_input = [{"input": base64.b64encode(message).decode("ascii")} for message in messages]
        response = self._call(
            "sign with",
            lambda: self._client.secrets.transit.sign_data(
                self.key,
                key_version=self.key_version,
                mount_point=self.mount,
                batch_input=batch_input,
            ),
        )
        results = (response or {}).get("data", {}).get("batch_results") or []
        if len(results) != len(messages):
            raise SignerError(f"{self.name} answered {len(results)} results for {len(messages)}")
        return [self._signature(result) for result in results]

    def _signature(self, result: dict) -> Signature:
        if result.get("error"):
            raise SignerError(f"{self.name} refused to sign: {result['error']}")
        text = str(result.get("signature", ""))
        prefix, _, encoded = text.rpartition(":")
        if prefix != f"vault:v{self.key_version}":
            raise SignerError(
                f"{self.name} signed with {prefix or 'an unknown format'}, not "
                f"vault:v{self.key_version}"
            )
        raw = base64.b64decode(encoded)
        if len(raw) != SIGNATURE_LENGTH:
            raise SignerError(f"{self.name} returned a {len(raw)}-byte signature, not ed25519")
        return Signature.from_bytes(raw)

    # --- the key -----------------------------------------------------------------------

    def _read_public_key(self, wanted: int | None) -> tuple[Pubkey, int]:
        data = self._call(
            "read the key of",
            lambda: self._client.secrets.transit.read_key(self.key, mount_point=self.mount),
        )["data"]
        if data.get("type") != "ed25519":
            raise SignerError(
                f"{self.name} is a {data.get('type')} key; the mint authority needs an ed25519 "
                "key (bao write -f transit/keys/<name> type=ed25519)"
            )
        if data.get("exportable"):
            log.warning("%s is exportable: its private key can leave the service", self.name)
        version = wanted or int(data["latest_version"])
        entry = data.get("keys", {}).get(str(version))
        if not entry or not entry.get("public_key"):
            versions = ", ".join(sorted(data.get("keys", {}))) or "none"
            raise SignerError(
                f"{self.name} has no version {version} (versions: {versions}); "
                "check VAULT_TRANSIT_KEY_VERSION"
            )
        return Pubkey.from_bytes(base64.b64decode(entry["public_key"])), version

    # --- the service -------------------------------------------------------------------

    def _login(self) -> None:
        with self._classified("log in to"):
            self._client.auth.approle.login(role_id=self._role_id, secret_id=self._secret_id)

    def _call(self, doing: str, request: Callable[[], T]) -> T:
        """Run a request; when AppRole credentials are configured and the token was
        refused (expired), log in again once and retry."""
        try:
            with self._classified(doing):
                return request()
        except SignerUnavailable as exc:
            if not (self._role_id and isinstance(exc.__cause__, vault.Forbidden)):
                raise
        log.info("token for %s refused; logging in again with AppRole", self.name)
        self._login()
        with self._classified(doing):
            return request()

    @contextmanager
    def _classified(self, doing: str) -> Iterator[None]:
        where = f"{doing} {self.name} at {self.addr}"
        try:
            yield
        except vault.VaultDown as exc:
            raise SignerUnavailable(f"cannot {where}: the service is sealed or down") from exc
        except (vault.Forbidden, vault.Unauthorized) as exc:
            raise SignerUnavailable(
                f"cannot {where}: permission denied (token expired or revoked, or its policy "
                "does not allow update on <mount>/sign/<key>)"
            ) from exc
        except (vault.InternalServerError, vault.BadGateway, vault.RateLimitExceeded) as exc:
            raise SignerUnavailable(f"cannot {where}: the service answered {exc}") from exc
        except vault.InvalidPath as exc:
            raise SignerError(f"cannot {where}: no such key or mount ({exc})") from exc
        except vault.VaultError as exc:
            raise SignerError(f"cannot {where}: {exc}") from exc
        except requests.exceptions.RequestException as exc:
            raise SignerUnavailable(f"cannot {where}: {type(exc).__name__}") from exc
