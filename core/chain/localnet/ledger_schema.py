"""The ledger's tables, and the upgrade of a ledger written by an older node.

Version 2 adds what explorers and wallets ask for: every account's owner and
lamports (getProgramAccounts, getLargestAccounts, getSupply), token mints and
delegates (getTokenLargestAccounts, getTokenAccountsByDelegate), the addresses
each transaction touched (getSignaturesForAddress), transactions by slot
(getBlock) and the wall-clock time each run of the node started at (blockTime
of any slot, empty ones included). All of it is written in the same commit as
the state it describes, so the indexes survive exactly what the ledger survives.
"""

from __future__ import annotations

import json
import sqlite3
import time

from solders.account import Account
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction

from core.chain.localnet.tokens import token_index_keys

SCHEMA_VERSION = 2

TABLES = """
CREATE TABLE IF NOT EXISTS ledger_meta (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS clock (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    slot INTEGER NOT NULL,
    transaction_count INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS accounts (
    pubkey BLOB PRIMARY KEY,
    account BLOB NOT NULL,
    token_owner BLOB,
    token_mint BLOB
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS transactions (
    id INTEGER PRIMARY KEY,
    signature BLOB NOT NULL UNIQUE,
    slot INTEGER NOT NULL,
    block_time INTEGER NOT NULL,
    failed INTEGER NOT NULL,
    meta TEXT NOT NULL,
    raw BLOB NOT NULL,
    pre_tokens BLOB NOT NULL,
    post_tokens BLOB NOT NULL
);
"""

# Version 2, applied to a new ledger and to an upgraded one alike.
_V2 = """
CREATE TABLE IF NOT EXISTS address_signatures (
    address BLOB NOT NULL,
    tx INTEGER NOT NULL,
    PRIMARY KEY (address, tx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS slot_times (
    start_slot INTEGER PRIMARY KEY,
    unix_ms INTEGER NOT NULL,
    slot_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS transactions_slot ON transactions (slot);
CREATE INDEX IF NOT EXISTS accounts_owner ON accounts (owner);
CREATE INDEX IF NOT EXISTS accounts_token_owner
    ON accounts (token_owner) WHERE token_owner IS NOT NULL;
CREATE INDEX IF NOT EXISTS accounts_token_mint
    ON accounts (token_mint) WHERE token_mint IS NOT NULL;
CREATE INDEX IF NOT EXISTS accounts_token_delegate
    ON accounts (token_delegate) WHERE token_delegate IS NOT NULL;
"""
_V2_COLUMNS = (("owner", "BLOB"), ("lamports", "INTEGER"), ("token_delegate", "BLOB"))


def account_row(key: Pubkey, account: Account) -> tuple[bytes, ...]:
    """(pubkey, account, token_owner, token_mint, token_delegate, owner, lamports)."""
    owner, mint, delegate = token_index_keys(account)
    return (
        bytes(key),
        bytes(account),
        owner,
        mint,
        delegate,
        bytes(account.owner),
        account.lamports,
    )


UPSERT_ACCOUNT = (
    "INSERT OR REPLACE INTO accounts (pubkey, account, token_owner, token_mint, token_delegate,"
    " owner, lamports) VALUES (?, ?, ?, ?, ?, ?, ?)"
)


def prepare(db: sqlite3.Connection, *, is_new: bool) -> None:
    """Create the tables of a new ledger, or bring an older one up to this version."""
    db.executescript(TABLES)
    columns = {row[1] for row in db.execute("PRAGMA table_info(accounts)")}
    db.execute("BEGIN IMMEDIATE")
    try:
        for name, kind in _V2_COLUMNS:
            if name not in columns:
                db.execute(f"ALTER TABLE accounts ADD COLUMN {name} {kind}")
        for statement in _V2.split(";"):
            if statement.strip():
                db.execute(statement)
        version = db.execute("SELECT value FROM ledger_meta WHERE key = 'schema'").fetchone()
        if not is_new and version is not None and int(bytes(version[0])) < 2:
            _upgrade_from_v1(db)
        db.execute(
            "INSERT OR REPLACE INTO ledger_meta VALUES ('schema', ?)",
            (str(SCHEMA_VERSION).encode(),),
        )
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def _upgrade_from_v1(db: sqlite3.Connection) -> None:
    """Fill the version-2 columns and indexes from what a version-1 ledger holds."""
    rows = db.execute("SELECT pubkey, account FROM accounts").fetchall()
    updates = []
    for key, blob in rows:
        account = Account.from_bytes(blob)
        _, _, delegate = token_index_keys(account)
        updates.append((bytes(account.owner), account.lamports, delegate, key))
    db.executemany(
        "UPDATE accounts SET owner = ?, lamports = ?, token_delegate = ? WHERE pubkey = ?", updates
    )
    for tx_id, raw, meta in db.execute("SELECT id, raw, meta FROM transactions").fetchall():
        db.executemany(
            "INSERT OR IGNORE INTO address_signatures VALUES (?, ?)",
            [(address, tx_id) for address in touched_addresses(bytes(raw), meta)],
        )
    first = db.execute("SELECT min(block_time) FROM transactions").fetchone()[0]
    # Older ledgers kept no slot times: date slot 0 by the first transaction, at 400 ms a slot.
    start_ms = int((first if first is not None else time.time()) * 1000)
    db.execute("INSERT OR IGNORE INTO slot_times VALUES (0, ?, 400)", (start_ms,))


def touched_addresses(raw: bytes, meta_json: str) -> list[bytes]:
    """Static keys and lookup-table loads of a stored transaction, for the address index."""
    tx = VersionedTransaction.from_bytes(raw)
    keys = [bytes(key) for key in tx.message.account_keys]
    loaded = json.loads(meta_json).get("loadedAddresses") or {}
    for group in ("writable", "readonly"):
        keys += [bytes(Pubkey.from_string(key)) for key in loaded.get(group, [])]
    return keys
