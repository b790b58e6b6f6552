"""JSON-RPC errors with the codes and messages a real Solana node uses.

Clients (solana-py via solders) pick the error class by `code`, and people read
the message, so both follow agave's rpc crate. `data_json` is a pre-serialised
JSON fragment because solders already renders the simulation result exactly.
"""

from __future__ import annotations

from solders.rpc.responses import RpcSimulateTransactionResult
from solders.transaction_status import (
    InstructionErrorBorshIO,
    InstructionErrorCustom,
    InstructionErrorFieldless,
    TransactionErrorDuplicateInstruction,
    TransactionErrorFieldless,
    TransactionErrorInstructionError,
    TransactionErrorInsufficientFundsForRent,
    TransactionErrorProgramExecutionTemporarilyRestricted,
    TransactionErrorType,
)

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
SEND_TRANSACTION_PREFLIGHT_FAILURE = -32002
TRANSACTION_SIGNATURE_VERIFICATION_FAILURE = -32003
BLOCK_NOT_AVAILABLE = -32004
NO_SNAPSHOT = -32008
UNSUPPORTED_TRANSACTION_VERSION = -32015

# The type name agave prints in transaction decoding errors (agave 2.2, as LiteSVM).
VERSIONED_TRANSACTION = "solana_transaction::versioned::VersionedTransaction"
PACKET_DATA_SIZE = 1232


class RpcError(Exception):
    def __init__(self, code: int, message: str, data_json: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data_json = data_json


def invalid_params(message: str) -> RpcError:
    return RpcError(INVALID_PARAMS, message)


def block_not_available(slot: int) -> RpcError:
    return RpcError(BLOCK_NOT_AVAILABLE, f"Block not available for slot {slot}")


def method_not_found() -> RpcError:
    return RpcError(METHOD_NOT_FOUND, "Method not found")


def signature_verification_failure() -> RpcError:
    return RpcError(
        TRANSACTION_SIGNATURE_VERIFICATION_FAILURE, "Transaction signature verification failure"
    )


def unsupported_version(version: int) -> RpcError:
    return RpcError(
        UNSUPPORTED_TRANSACTION_VERSION,
        f"Transaction version ({version}) is not supported by the requesting client. "
        "Please try the request again with the following configuration parameter: "
        '"maxSupportedTransactionVersion": 0',
    )


def preflight_failure(
    err: TransactionErrorType, logs: list[str] | None = None, units_consumed: int = 0
) -> RpcError:
    result = RpcSimulateTransactionResult(
        err=err, logs=logs or [], accounts=None, units_consumed=units_consumed
    )
    return RpcError(
        SEND_TRANSACTION_PREFLIGHT_FAILURE,
        f"Transaction simulation failed: {describe(err)}",
        result.to_json(),
    )


_TRANSACTION_ERRORS = {
    "AccountInUse": "Account in use",
    "AccountLoadedTwice": "Account loaded twice",
    "AccountNotFound": "Attempt to debit an account but found no record of a prior credit.",
    "ProgramAccountNotFound": "Attempt to load a program that does not exist",
    "InsufficientFundsForFee": "Insufficient funds for fee",
    "InvalidAccountForFee": "This account may not be used to pay transaction fees",
    "AlreadyProcessed": "This transaction has already been processed",
    "BlockhashNotFound": "Blockhash not found",
    "CallChainTooDeep": "Loader call chain is too deep",
    "MissingSignatureForFee": "Transaction requires a fee but has no signature present",
    "InvalidAccountIndex": "Transaction contains an invalid account reference",
    "SignatureFailure": "Transaction did not pass signature verification",
    "InvalidProgramForExecution": "This program may not be used for executing instructions",
    "SanitizeFailure": "Transaction failed to sanitize accounts offsets correctly",
    "TooManyAccountLocks": "Transaction locked too many accounts",
    "InvalidRentPayingAccount": (
        "Transaction leaves an account with a lower balance than rent-exempt minimum"
    ),
    "UnsupportedVersion": "Transaction version is unsupported",
    "InvalidWritableAccount": "Transaction loads a writable account that cannot be written",
    "AddressLookupTableNotFound": ("Transaction loads an address table account that doesn't exist"),
    "InvalidAddressLookupTableIndex": "Transaction address table lookup uses an invalid index",
    "MaxLoadedAccountsDataSizeExceeded": ("Transaction exceeded max loaded accounts data size cap"),
}

_INSTRUCTION_ERRORS = {
    "GenericError": "generic instruction error",
    "InvalidArgument": "invalid program argument",
    "InvalidInstructionData": "invalid instruction data",
    "InvalidAccountData": "invalid account data for instruction",
    "AccountDataTooSmall": "account data too small for instruction",
    "InsufficientFunds": "insufficient funds for instruction",
    "IncorrectProgramId": "incorrect program id for instruction",
    "MissingRequiredSignature": "missing required signature for instruction",
    "AccountAlreadyInitialized": "instruction requires an uninitialized account",
    "UninitializedAccount": "instruction requires an initialized account",
    "NotEnoughAccountKeys": "insufficient account keys for instruction",
    "AccountNotExecutable": "instruction expected an executable account",
    "ComputationalBudgetExceeded": "Computational budget exceeded",
    "PrivilegeEscalation": (
        "Cross-program invocation with unauthorized signer or writable account"
    ),
    "ProgramFailedToComplete": "Program failed to complete",
    "ArithmeticOverflow": "Program arithmetic overflowed",
    "IllegalOwner": "Provided owner is not allowed",
    "InvalidSeeds": "Provided seeds do not result in a valid address",
    "MissingAccount": "An account required by the instruction is missing",
    "IncorrectAuthority": "Incorrect authority provided",
    "Immutable": "Account is immutable",
}


def _variant(value: object) -> str:
    return str(value).rsplit(".", 1)[-1]


def describe(err: TransactionErrorType) -> str:
    """agave's Display of a TransactionError (the variant's name where we lack the text)."""
    if isinstance(err, TransactionErrorInstructionError):
        return f"Error processing Instruction {err.index}: {_describe_instruction(err.err)}"
    if isinstance(err, TransactionErrorInsufficientFundsForRent):
        return (
            f"Transaction results in an account ({err.account_index}) "
            "with insufficient funds for rent"
        )
    if isinstance(err, TransactionErrorDuplicateInstruction):
        return f"Transaction contains a duplicate instruction ({err.index}) that is not allowed"
    if isinstance(err, TransactionErrorProgramExecutionTemporarilyRestricted):
        return (
            "Execution of the program referenced by account at index "
            f"{err.account_index} is temporarily restricted."
        )
    if isinstance(err, TransactionErrorFieldless):
        name = _variant(err)
        return _TRANSACTION_ERRORS.get(name, name)
    return str(err)


def _describe_instruction(err: object) -> str:
    if isinstance(err, InstructionErrorCustom):
        return f"custom program error: {err.code:#x}"
    if isinstance(err, InstructionErrorBorshIO):
        return f"Failed to serialize or deserialize account data: {err.value}"
    if isinstance(err, InstructionErrorFieldless):
        name = _variant(err)
        return _INSTRUCTION_ERRORS.get(name, name)
    return str(err)
