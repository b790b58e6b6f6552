"""jsonParsed instructions, as agave's transaction-status crate renders them.

agave parses System, SPL Token and Token-2022, Associated Token Account, Memo and
Address Lookup Table instructions (plus loaders, Stake and Vote, which never run
here); everything else, Compute Budget included, is "partially decoded":
program id, account addresses and base-58 data. Token-2022 extension
instructions (tag 26 and up) are partially decoded here too: the node does not
parse them (CHAIN.md says so).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import base58
from solders.pubkey import Pubkey

from core.chain.localnet.tokens import TOKEN_PROGRAMS, amount_string

SYSTEM_PROGRAM = Pubkey.from_string("11111111111111111111111111111111")
ATA_PROGRAM = Pubkey.from_string("ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL")
MEMO_PROGRAMS = (
    Pubkey.from_string("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr"),
    Pubkey.from_string("Memo1UhkJRfHyvLMcVucJwxXeuD728EqVDDwQDxFMNo"),
)
LOOKUP_TABLE_PROGRAM = Pubkey.from_string("AddressLookupTab1e1111111111111111111111111")


class NotParsable(Exception):
    """agave's InstructionNotParsable / InstructionKeyMismatch: show it partially decoded."""


class _Reader:
    """Little-endian fields of instruction data; running short means not parsable."""

    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def take(self, size: int) -> bytes:
        if self.at + size > len(self.data):
            raise NotParsable
        chunk = self.data[self.at : self.at + size]
        self.at += size
        return chunk

    def u8(self) -> int:
        return self.take(1)[0]

    def u32(self) -> int:
        return int.from_bytes(self.take(4), "little")

    def u64(self) -> int:
        return int.from_bytes(self.take(8), "little")

    def key(self) -> str:
        return str(Pubkey.from_bytes(self.take(32)))

    def string(self) -> str:  # bincode String: u64 length, UTF-8 bytes
        try:
            return self.take(self.u64()).decode()
        except UnicodeDecodeError:
            raise NotParsable from None

    def coption_key(self) -> str | None:  # SPL Token packs COption<Pubkey> as 1 + 32 bytes
        tag = self.u8()
        if tag > 1:
            raise NotParsable
        return self.key() if tag else None


def _accounts(indexes: Sequence[int], keys: Sequence[Pubkey], need: int) -> list[str]:
    if len(indexes) < need or any(i >= len(keys) for i in indexes):
        raise NotParsable
    return [str(keys[i]) for i in indexes]


def _system(data: bytes, a: list[str]) -> tuple[str, dict[str, Any]]:
    r = _Reader(data)
    tag = r.u32()

    def need(n: int) -> None:
        if len(a) < n:
            raise NotParsable

    if tag == 0:
        lamports, space, owner = r.u64(), r.u64(), r.key()
        need(2)
        info = {"source": a[0], "newAccount": a[1], "lamports": lamports, "space": space}
        return "createAccount", {**info, "owner": owner}
    if tag == 1:
        need(1)
        return "assign", {"account": a[0], "owner": r.key()}
    if tag == 2:
        need(2)
        return "transfer", {"source": a[0], "destination": a[1], "lamports": r.u64()}
    if tag == 3:
        base, seed, lamports, space, owner = r.key(), r.string(), r.u64(), r.u64(), r.key()
        need(2)
        return "createAccountWithSeed", {
            "source": a[0],
            "newAccount": a[1],
            "base": base,
            "seed": seed,
            "lamports": lamports,
            "space": space,
            "owner": owner,
        }
    if tag == 4:
        need(3)
        names = ("nonceAccount", "recentBlockhashesSysvar", "nonceAuthority")
        return "advanceNonce", dict(zip(names, a, strict=False))
    if tag == 5:
        lamports = r.u64()
        need(5)
        names = ("nonceAccount", "destination", "recentBlockhashesSysvar", "rentSysvar")
        info = dict(zip(names, a, strict=False))
        return "withdrawFromNonce", {**info, "nonceAuthority": a[4], "lamports": lamports}
    if tag == 6:
        authority = r.key()
        need(3)
        names = ("nonceAccount", "recentBlockhashesSysvar", "rentSysvar")
        return "initializeNonce", {**dict(zip(names, a, strict=False)), "nonceAuthority": authority}
    if tag == 7:
        authority = r.key()
        need(2)
        info = {"nonceAccount": a[0], "nonceAuthority": a[1], "newAuthorized": authority}
        return "authorizeNonce", info
    if tag == 8:
        need(1)
        return "allocate", {"account": a[0], "space": r.u64()}
    if tag == 9:
        base, seed, space, owner = r.key(), r.string(), r.u64(), r.key()
        need(2)
        info = {"account": a[0], "base": base, "seed": seed, "space": space}
        return "allocateWithSeed", {**info, "owner": owner}
    if tag == 10:
        base, seed, owner = r.key(), r.string(), r.key()
        need(2)
        return "assignWithSeed", {"account": a[0], "base": base, "seed": seed, "owner": owner}
    if tag == 11:
        lamports, seed, owner = r.u64(), r.string(), r.key()
        need(3)
        return "transferWithSeed", {
            "source": a[0],
            "sourceBase": a[1],
            "destination": a[2],
            "lamports": lamports,
            "sourceSeed": seed,
            "sourceOwner": owner,
        }
    if tag == 12:
        need(1)
        return "upgradeNonce", {"nonceAccount": a[0]}
    raise NotParsable


_AUTHORITY_TYPES = (
    "mintTokens",
    "freezeAccount",
    "accountOwner",
    "closeAccount",
    "transferFeeConfig",
    "withheldWithdraw",
    "closeMint",
    "interestRate",
    "permanentDelegate",
    "confidentialTransferMint",
    "transferHookProgramId",
    "confidentialTransferFeeConfig",
    "metadataPointer",
    "groupPointer",
    "groupMemberPointer",
    "scaledUiAmount",
    "pause",
)


def _token_amount(amount: int, decimals: int) -> dict[str, Any]:
    return {
        "uiAmount": amount / 10**decimals,
        "decimals": decimals,
        "amount": str(amount),
        "uiAmountString": amount_string(amount, decimals),
    }


def _signers(info: dict[str, Any], a: list[str], last: int, single: str, multisig: str) -> None:
    """agave's parse_signers: one authority, or a multisig followed by its signers."""
    if len(a) > last + 1:
        info[multisig] = a[last]
        info["signers"] = a[last + 1 :]
    elif len(a) > last:
        info[single] = a[last]


# tag -> (type, accounts before the authority, their names, authority name, multisig name)
_SIMPLE_TOKEN: dict[int, tuple[str, tuple[str, ...], str, str]] = {
    3: ("transfer", ("source", "destination"), "authority", "multisigAuthority"),
    4: ("approve", ("source", "delegate"), "owner", "multisigOwner"),
    5: ("revoke", ("source",), "owner", "multisigOwner"),
    7: ("mintTo", ("mint", "account"), "mintAuthority", "multisigMintAuthority"),
    8: ("burn", ("account", "mint"), "authority", "multisigAuthority"),
    9: ("closeAccount", ("account", "destination"), "owner", "multisigOwner"),
    10: ("freezeAccount", ("account", "mint"), "freezeAuthority", "multisigFreezeAuthority"),
    11: ("thawAccount", ("account", "mint"), "freezeAuthority", "multisigFreezeAuthority"),
    12: ("transferChecked", ("source", "mint", "destination"), "authority", "multisigAuthority"),
    13: ("approveChecked", ("source", "mint", "delegate"), "owner", "multisigOwner"),
    14: ("mintToChecked", ("mint", "account"), "mintAuthority", "multisigMintAuthority"),
    15: ("burnChecked", ("account", "mint"), "authority", "multisigAuthority"),
}
_CHECKED = {12, 13, 14, 15}
_MIN_ACCOUNTS = {3: 3, 4: 3, 5: 2, 7: 3, 8: 3, 9: 3, 10: 3, 11: 3, 12: 4, 13: 4, 14: 3, 15: 3}


def _token(data: bytes, a: list[str]) -> tuple[str, dict[str, Any]]:
    r = _Reader(data)
    tag = r.u8()
    if tag in _SIMPLE_TOKEN:
        kind, names, single, multisig = _SIMPLE_TOKEN[tag]
        amount = None if tag in (5, 9, 10, 11) else r.u64()
        decimals = r.u8() if tag in _CHECKED else None
        if len(a) < _MIN_ACCOUNTS[tag]:
            raise NotParsable
        info: dict[str, Any] = dict(zip(names, a, strict=False))
        if decimals is not None and amount is not None:
            info["tokenAmount"] = _token_amount(amount, decimals)
        elif amount is not None:
            info["amount"] = str(amount)
        _signers(info, a, len(names), single, multisig)
        return kind, info
    if tag in (0, 20):
        decimals, authority, freeze = r.u8(), r.key(), r.coption_key()
        if len(a) < (2 if tag == 0 else 1):
            raise NotParsable
        info = {"mint": a[0], "decimals": decimals, "mintAuthority": authority}
        if tag == 0:
            info["rentSysvar"] = a[1]
        if freeze is not None:
            info["freezeAuthority"] = freeze
        return ("initializeMint" if tag == 0 else "initializeMint2"), info
    if tag == 1:
        if len(a) < 4:
            raise NotParsable
        info = {"account": a[0], "mint": a[1], "owner": a[2], "rentSysvar": a[3]}
        return "initializeAccount", info
    if tag in (16, 18):
        owner = r.key()
        if len(a) < (3 if tag == 16 else 2):
            raise NotParsable
        info = {"account": a[0], "mint": a[1], "owner": owner}
        if tag == 16:
            info["rentSysvar"] = a[2]
        return ("initializeAccount2" if tag == 16 else "initializeAccount3"), info
    if tag in (2, 19):
        m = r.u8()
        first = 2 if tag == 2 else 1
        if len(a) < first + 1:
            raise NotParsable
        info = {"multisig": a[0]}
        if tag == 2:
            info["rentSysvar"] = a[1]
        return ("initializeMultisig" if tag == 2 else "initializeMultisig2"), {
            **info,
            "signers": a[first:],
            "m": m,
        }
    if tag == 6:
        authority_type, new_authority = r.u8(), r.coption_key()
        if authority_type >= len(_AUTHORITY_TYPES) or len(a) < 2:
            raise NotParsable
        name = _AUTHORITY_TYPES[authority_type]
        owned = "account" if name in ("accountOwner", "closeAccount") else "mint"
        info = {owned: a[0], "authorityType": name, "newAuthority": new_authority}
        _signers(info, a, 1, "authority", "multisigAuthority")
        return "setAuthority", info
    if tag in (17, 22):
        if not a:
            raise NotParsable
        return ("syncNative" if tag == 17 else "initializeImmutableOwner"), {"account": a[0]}
    if tag == 23:
        amount = r.u64()
        if not a:
            raise NotParsable
        return "amountToUiAmount", {"mint": a[0], "amount": str(amount)}
    if tag == 24:
        if not a:
            raise NotParsable
        try:
            text = data[1:].decode()
        except UnicodeDecodeError:
            raise NotParsable from None
        return "uiAmountToAmount", {"mint": a[0], "uiAmount": text}
    if tag == 25:
        close_authority = r.coption_key()
        if not a:
            raise NotParsable
        return "initializeMintCloseAuthority", {"mint": a[0], "newAuthority": close_authority}
    raise NotParsable


def _associated_token(data: bytes, a: list[str]) -> tuple[str, dict[str, Any]]:
    if len(data) > 1 or (data and data[0] > 2):
        raise NotParsable
    tag = data[0] if data else 0
    if tag == 2:
        if len(a) < 7:
            raise NotParsable
        names = (
            "nestedSource",
            "nestedMint",
            "destination",
            "nestedOwner",
            "ownerMint",
            "wallet",
            "tokenProgram",
        )
        return "recoverNested", dict(zip(names, a, strict=False))
    if len(a) < 6:
        raise NotParsable
    names = ("source", "account", "wallet", "mint", "systemProgram", "tokenProgram")
    return ("create" if tag == 0 else "createIdempotent"), dict(zip(names, a, strict=False))


def _lookup_table(data: bytes, a: list[str]) -> tuple[str, dict[str, Any]]:
    r = _Reader(data)
    tag = r.u32()
    table = {"lookupTableAccount": a[0] if a else "", "lookupTableAuthority": ""}
    if tag == 0:
        recent_slot, bump = r.u64(), r.u8()
        if len(a) < 4:
            raise NotParsable
        return "createLookupTable", {
            "lookupTableAccount": a[0],
            "lookupTableAuthority": a[1],
            "payerAccount": a[2],
            "systemProgram": a[3],
            "recentSlot": recent_slot,
            "bumpSeed": bump,
        }
    if tag == 2:
        addresses = [r.key() for _ in range(r.u64())]
        if len(a) < 2:
            raise NotParsable
        info = {"lookupTableAccount": a[0], "lookupTableAuthority": a[1]}
        if len(a) >= 4:
            info |= {"payerAccount": a[2], "systemProgram": a[3]}
        return "extendLookupTable", {**info, "newAddresses": addresses}
    if tag in (1, 3):
        if len(a) < 2:
            raise NotParsable
        table["lookupTableAuthority"] = a[1]
        return ("freezeLookupTable" if tag == 1 else "deactivateLookupTable"), table
    if tag == 4:
        if len(a) < 3:
            raise NotParsable
        return "closeLookupTable", {**table, "lookupTableAuthority": a[1], "recipient": a[2]}
    raise NotParsable


_Parser = Callable[[bytes, list[str]], tuple[str, dict[str, Any]]]
_PARSERS: dict[Pubkey, tuple[str, _Parser]] = {
    SYSTEM_PROGRAM: ("system", _system),
    ATA_PROGRAM: ("spl-associated-token-account", _associated_token),
    LOOKUP_TABLE_PROGRAM: ("address-lookup-table", _lookup_table),
    **{program: ("spl-token", _token) for program in TOKEN_PROGRAMS},
}


def parse_instruction(
    program_index: int,
    account_indexes: Sequence[int],
    data: bytes,
    keys: Sequence[Pubkey],
    stack_height: int | None,
) -> dict[str, Any]:
    """One instruction in jsonParsed form: parsed where agave parses it, else partially decoded."""
    program = keys[program_index]
    try:
        if program in MEMO_PROGRAMS:
            try:
                parsed: Any = data.decode()
            except UnicodeDecodeError:
                raise NotParsable from None
            return _parsed("spl-memo", program, parsed, stack_height)
        if program in _PARSERS:
            name, parser = _PARSERS[program]
            accounts = _accounts(account_indexes, keys, 0)
            kind, info = parser(data, accounts)
            return _parsed(name, program, {"info": info, "type": kind}, stack_height)
    except NotParsable:
        pass
    return {
        "programId": str(program),
        "accounts": [str(keys[i]) for i in account_indexes if i < len(keys)],
        "data": base58.b58encode(data).decode(),
        "stackHeight": stack_height,
    }


def _parsed(name: str, program: Pubkey, parsed: Any, stack_height: int | None) -> dict[str, Any]:
    return {
        "program": name,
        "programId": str(program),
        "parsed": parsed,
        "stackHeight": stack_height,
    }
