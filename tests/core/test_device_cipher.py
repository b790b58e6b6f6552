"""The per-process cache of opened dlms-enc keys (core.readings.encryption.device_cipher):
a key set again is sealed anew, so the cache can never answer with the key before."""

from __future__ import annotations

import os

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core.device_keys import sealed_device_key
from core.readings.encryption import device_cipher

WRAP = bytes(range(32, 64))
NONCE = bytes(12)


def _opens(cipher: AESGCM, key: bytes) -> bool:
    """Whether `cipher` opens what `key` sealed (an independent AESGCM seals it)."""
    sealed = AESGCM(key).encrypt(NONCE, b"tick", b"M-1:1")
    try:
        return cipher.decrypt(NONCE, sealed, b"M-1:1") == b"tick"
    except InvalidTag:
        return False


def test_a_rotated_or_reprovisioned_key_is_never_served_from_before() -> None:
    old, new = os.urandom(32), os.urandom(32)
    sealed_old = sealed_device_key(WRAP, "M-1", old.hex())
    cipher = device_cipher(WRAP, "M-1", sealed_old)
    assert device_cipher(WRAP, "M-1", sealed_old) is cipher  # cached
    assert _opens(cipher, old)
    sealed_new = sealed_device_key(WRAP, "M-1", new.hex())
    rotated = device_cipher(WRAP, "M-1", sealed_new)
    assert _opens(rotated, new) and not _opens(rotated, old)
    again = sealed_device_key(WRAP, "M-1", old.hex())  # the old key provisioned again
    assert again != sealed_old  # sealed with a fresh nonce
    restored = device_cipher(WRAP, "M-1", again)
    assert _opens(restored, old) and not _opens(restored, new)


def test_a_sealed_key_of_another_meter_or_wrap_does_not_open_and_is_not_cached() -> None:
    sealed = sealed_device_key(WRAP, "M-2", os.urandom(32).hex())
    for wrap, serial in ((WRAP, "M-3"), (bytes(32), "M-2")):
        before = device_cipher.cache_info().currsize
        with pytest.raises(InvalidTag):
            device_cipher(wrap, serial, sealed)
        assert device_cipher.cache_info().currsize == before
