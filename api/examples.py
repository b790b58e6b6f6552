"""The worked example used in the OpenAPI examples and docs/API.md (tests check both).

Key: ed25519 from the 32-byte all-zero seed, i.e. `Keypair.from_seed(bytes(32))`.
Never use it for a real meter.
"""

from __future__ import annotations

EXAMPLE_SEED_HEX = "00" * 32
EXAMPLE_PUBLIC_KEY = "4zvwRjXUKGfvwnParsHAS3HuSVzV5cA4McphgmoCtajS"
EXAMPLE_SERIAL = "MTR-0001"
EXAMPLE_TIMESTAMP = "2026-11-20T11:55:00.000Z"
EXAMPLE_UNIX_MS = 1_795_175_700_000
EXAMPLE_KWH = "3.4125"
EXAMPLE_MESSAGE = "gridtokenx-reading:v1:MTR-0001:1795175700000:3.412500"
EXAMPLE_SIGNATURE = (
    "mMTmU94beSye3B7s9JkTAEwDqwE5oBfcYo9Vdi251LdcVoAzp3UZWzK5W1HcKGYvdbNkPwu7HAawqf1P2n8d1aZ"
)
EXAMPLE_WALLET = "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin"
EXAMPLE_API_KEY = "gtx_3q2-7v0XbBzq1yqJk8m5cS2d4hW9pTgYlKf0eN6uRaE"

READING_IN = {
    "meter_serial": EXAMPLE_SERIAL,
    "kwh_amount": EXAMPLE_KWH,
    "reading_timestamp": EXAMPLE_TIMESTAMP,
    "meter_signature": EXAMPLE_SIGNATURE,
}
READING_OUT = {
    "id": 42,
    "meter_serial": EXAMPLE_SERIAL,
    "user_id": 3,
    "wallet_address": EXAMPLE_WALLET,
    "kwh_amount": "3.412500",
    "reading_timestamp": "2026-11-20T11:55:00Z",
    "submitted_at": "2026-11-20T11:55:02.418Z",
    "status": "pending",
    "minted": False,
    "token_base_units": None,
    "mint_tx_signature": None,
}

# One example per error code a route may answer, for the OpenAPI `responses`.
ERROR_MESSAGES: dict[str, str] = {
    "certificate_not_active": "certificate 88 is retiring, not active",
    "unauthenticated": "a valid meter API key or session token is required",
    "invalid_signature": "meter_signature does not verify against this meter's public key",
    "meter_suspended": "meter 'MTR-0001' is suspended; ask an admin to resume it",
    "forbidden": "this API key belongs to meter 'MTR-0001', not 'MTR-0002'",
    "unknown_meter": "no meter with serial 'MTR-9999'",
    "not_found": "reading 42 does not exist",
    "duplicate_reading": "meter already has reading 41 within the duplicate window",
    "already_minted": "reading 42 is already minted",
    "conflict": "reading 42 was rejected in review",
    "username_taken": "the username 'alice' is taken",
    "serial_taken": "a meter with serial 'MTR-0001' exists",
    "payload_too_large": "a batch holds at most 1000 readings, got 1200",
    "kwh_out_of_range": "kwh_amount must be > 0 and <= 100.0, got 250",
    "too_many_decimals": "kwh_amount 1.0000001 has more than 6 decimals; amounts are never rounded",
    "timestamp_in_future": "reading_timestamp is more than 60 s in the future",
    "reading_too_old": "reading_timestamp is older than 7 days",
    "invalid_format": "reading_timestamp must be RFC 3339 with an offset",
    "invalid_wallet": "'abc' decodes to 2 bytes; a Solana address is 32",
    "invalid_owner": "'op' is not an enabled prosumer with a wallet",
    "not_acceptable": "only text/csv is offered here, not 'application/json'",
    "invalid_filter": "status: 'lost' is not a reading status",
    "last_admin": (
        "admin is the last enabled admin and cannot be disabled; "
        "create or enable another admin first"
    ),
    "rate_limited": (
        "too many readings from this meter: at most 120 per minute; retry after the delay"
    ),
    "replayed_counter": "invocation counter 41 is not above 41, the meter's last",
    "decrypt_failed": 'the frame does not authenticate with this meter\'s key and AAD "GTX-1:42"',
    "encryption_required": "meter 'GTX-1' sends encrypted frames only (protocol dlms-enc)",
}
ERROR_FIELDS = {
    "replayed_counter": "payload.enc.counter",
    "decrypt_failed": "payload.enc",
    "encryption_required": "protocol",
    "invalid_signature": "meter_signature",
    "forbidden": "meter_serial",
    "unknown_meter": "meter_serial",
    "duplicate_reading": "reading_timestamp",
    "kwh_out_of_range": "kwh_amount",
    "too_many_decimals": "kwh_amount",
    "timestamp_in_future": "reading_timestamp",
    "reading_too_old": "reading_timestamp",
    "invalid_format": "reading_timestamp",
    "invalid_wallet": "wallet_address",
    "invalid_owner": "owner_username",
    "not_acceptable": "accept",
    "invalid_filter": "status",
}
