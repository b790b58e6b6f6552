"""Solana addresses as users type them: base58 of exactly 32 bytes."""

from __future__ import annotations

import base58

from core.errors import DomainError


class InvalidWallet(DomainError):
    code = "invalid_wallet"
    field = "wallet_address"


def parse_wallet(address: str, *, field: str = "wallet_address") -> str:
    """The address, stripped, if it is base58 of 32 bytes; else InvalidWallet naming why."""
    text = (address or "").strip()
    if not text:
        raise InvalidWallet("a Solana wallet address is required", field=field)
    try:
        raw = base58.b58decode(text)
    except ValueError as exc:
        raise InvalidWallet(f"{text!r} is not base58", field=field) from exc
    if len(raw) != 32:
        raise InvalidWallet(
            f"{text!r} decodes to {len(raw)} bytes; a Solana address is 32", field=field
        )
    return text


def is_valid_wallet(address: str | None) -> bool:
    try:
        parse_wallet(address or "")
    except InvalidWallet:
        return False
    return True
