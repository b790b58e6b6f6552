"""An HTTP JSON-RPC relay in front of the node that can hold back sendTransaction.

With `hold_sends` set, every sendTransaction is answered with an RPC error and
never reaches the node; its raw bytes are kept in `held`. Everything else is
relayed unchanged. Tests use it to stop a process between persisting a signed
transaction and the node receiving it.

`refuse(method)` returning true answers that call with an RPC error too (the
node failing one kind of request), `rewrite[method]` changes the node's result
of a single call on its way back (the node answering wrongly), and `calls`
counts the requests by method.
"""

from __future__ import annotations

import base64
import json
import threading
import urllib.request
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class RpcGate:
    def __init__(self, target_url: str) -> None:
        self.target_url = target_url
        self.hold_sends = False
        self.held: list[bytes] = []
        self.refuse: Callable[[str], bool] = lambda _method: False
        self.rewrite: dict[str, Callable[[Any], Any]] = {}
        self.calls: Counter[str] = Counter()
        gate = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                answer = gate._answer(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *_: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> RpcGate:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _answer(self, body: bytes) -> bytes:
        request = json.loads(body)
        calls = request if isinstance(request, list) else [request]
        self.calls.update(str(c.get("method")) for c in calls)
        if any(self.refuse(str(c.get("method"))) for c in calls):
            error = {"code": -32603, "message": "refused by the test's gate"}
            answers = [{"jsonrpc": "2.0", "id": c.get("id"), "error": error} for c in calls]
            return json.dumps(answers if isinstance(request, list) else answers[0]).encode()
        if self.hold_sends and any(c.get("method") == "sendTransaction" for c in calls):
            for call in calls:
                if call.get("method") == "sendTransaction":
                    self.held.append(base64.b64decode(call["params"][0]))
            error = {"code": -32005, "message": "held by the test's gate"}
            answers = [{"jsonrpc": "2.0", "id": c.get("id"), "error": error} for c in calls]
            return json.dumps(answers if isinstance(request, list) else answers[0]).encode()
        forwarded = urllib.request.Request(
            self.target_url, data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(forwarded, timeout=30) as response:
            answer = response.read()
        single = isinstance(request, dict)
        rewrite = self.rewrite.get(str(request.get("method"))) if single else None
        if rewrite is None:
            return answer
        decoded = json.loads(answer)
        if "result" in decoded:
            decoded["result"] = rewrite(decoded["result"])
        return json.dumps(decoded).encode()
