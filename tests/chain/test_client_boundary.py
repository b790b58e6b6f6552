"""STYLE 6: the chain is reached through one client module.

Outside core/chain/client.py (and the embedded node, which *serves* JSON-RPC),
no project module imports solana-py's RPC layer or solders.rpc.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("solana.rpc", "solana.exceptions", "solders.rpc", "spl.token.client")
# signature_watch: solana-py's websocket_api, the pubsub side of the same one client layer.
ALLOWED = {Path("core/chain/client.py"), Path("core/chain/signature_watch.py")}
NODE = Path("core/chain/localnet")
SKIPPED_DIRS = {".venv", "tests", "bench", ".git", "node_modules", "data", "mutants"}


def parse(source: str) -> ast.Module:
    """ast.parse, again when CPython 3.11.7's AST converter trips over another thread's.

    Its recursion-depth counter is shared by threads, so a parse that runs while another
    thread of the test process converts an AST can fail with "AST constructor recursion
    depth mismatch". The source is the same; parsing again succeeds.
    """
    for _ in range(3):
        try:
            return ast.parse(source)
        except SystemError as error:
            if "AST constructor recursion depth mismatch" not in str(error):
                raise
    return ast.parse(source)


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def project_modules() -> list[Path]:
    return [
        path.relative_to(ROOT)
        for path in ROOT.rglob("*.py")
        if not SKIPPED_DIRS & set(path.relative_to(ROOT).parts)
    ]


def test_only_the_client_module_imports_the_rpc_layer() -> None:
    offenders = {
        str(path): sorted(
            name for name in imported_modules(ROOT / path) if name.startswith(FORBIDDEN)
        )
        for path in project_modules()
        if path not in ALLOWED and NODE not in path.parents
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_the_scan_sees_the_client_itself() -> None:
    assert Path("core/chain/client.py") in project_modules()
    assert "solana.rpc.api" in imported_modules(ROOT / "core/chain/client.py")
