"""The embedded Solana JSON-RPC node: solana-test-validator's role, played by LiteSVM.

`python -m core.chain.localnet` serves JSON-RPC on 127.0.0.1:LOCALNET_PORT with a
durable ledger under DATA_DIR/localnet/. Modules, each with one job:

    clock      slots, block heights, the 150-block blockhash window
    ledger     the SQLite store: accounts, signatures, seed, slot
    execution  what a landed transaction leaves behind (writes, status meta)
    node       LiteSVM + clock + ledger: the rules a leader applies
    params     JSON-RPC params and transaction decoding, with agave's errors
    rpc        the JSON-RPC envelope: single and batch calls, ids, errors
    methods/   one module per family of methods
    server     HTTP (uvicorn, bare ASGI) and the slot ticker
"""
