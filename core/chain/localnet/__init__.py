"""The embedded Solana JSON-RPC node: solana-test-validator's role, played by LiteSVM.

`python -m core.chain.localnet` serves JSON-RPC on 127.0.0.1:LOCALNET_PORT with a
durable ledger under DATA_DIR/localnet/. Modules, each with one job:

    clock      slots, block heights, the 150-block blockhash window
    ledger     the SQLite store: accounts, signatures, seed, slot (reads)
    ledger_schema / ledger_index   its tables and upgrades; reads over its indexes
    records    what the ledger keeps of a transaction
    writer     the ledger's writer thread: ordered, grouped, fsynced commits
    execution  what a landed transaction leaves behind (writes, status meta, fees)
    rent       the runtime's rent-state rule, which LiteSVM does not apply
    tokens     SPL Token layouts, balances and jsonParsed views
    encoding / instruction_parsers   transactions in every encoding, jsonParsed
    node       LiteSVM + clock + ledger: the rules a leader applies
    params     JSON-RPC params and transaction decoding, with agave's errors
    rpc        the JSON-RPC envelope: single and batch calls, ids, errors
    methods/   the methods, by family (cluster, accounts, transactions, history,
               programs, validators)
    server     HTTP (uvicorn, bare ASGI), pubsub and the slot ticker
    pubsub_params / pubsub_hub / pubsub_server   WebSocket subscriptions on port + 1:
               their params, matching and commit-gated notifications, connections
    allocator  malloc thresholds that keep LiteSVM out of the kernel
"""
